"""Test helper: counts the transactions (batches) a Mailbox commits."""

from __future__ import annotations

from actr.mailbox import Mailbox


class BatchCounter:
    """``count`` is how many batches the mailbox committed since this was made."""

    def __init__(self, box: Mailbox) -> None:
        self._box = box
        self._start = box.commits

    @property
    def count(self) -> int:
        return self._box.commits - self._start
