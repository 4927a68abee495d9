"""The identity file: a daemon's registration (RegisterOk) kept across restarts, so
that a restarted daemon renews its credential and keeps its ActrId (AIS-3) instead
of registering as a new actor.

The file holds the renewal token, a secret: it is written owner-only (0600) and
replaced atomically (a temporary file, fsynced, renamed over the old one), so a
crash leaves the old identity or the new one, never part of either.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from actr.protocol.actr_pb2 import RegisterOk

__all__ = ["IdentityFile"]

log = logging.getLogger(__name__)


class IdentityFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, realm: int) -> RegisterOk | None:
        """The saved registration in ``realm``, if there is one that can be renewed."""
        if not self.path.exists():
            return None
        saved = RegisterOk()
        try:
            saved.ParseFromString(self.path.read_bytes())
        except Exception:
            log.warning("identity_state_unreadable path=%s", self.path)
            return None
        if saved.actr_id.realm.realm_id != realm or not saved.renewal_token:
            return None
        return saved

    def save(self, registration: RegisterOk) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(registration.SerializeToString())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
