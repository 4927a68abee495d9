"""Test helper: counts the transactions (batches) a Mailbox runs."""

from __future__ import annotations

from actr.mailbox import Mailbox


class BatchCounter:
    """Wraps ``box._apply_batch``; ``count`` is how many batches ran since."""

    def __init__(self, box: Mailbox) -> None:
        self.count = 0
        original = box._apply_batch

        def counting(*args: object) -> object:
            self.count += 1
            return original(*args)  # type: ignore[arg-type]

        box._apply_batch = counting  # type: ignore[method-assign]
