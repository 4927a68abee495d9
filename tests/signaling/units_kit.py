"""Helpers of the signaling core's unit tests: a credential authority, a registry and
dispatcher with time passed in, registered actors."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actr.identity import parse_type
from signaling.credentials import CredentialAuthority
from signaling.dispatcher import Dispatcher
from signaling.registry import ActorRecord, Registry
from signaling.stats import Stats

T0 = 1_800_000_000.0


def _authority(lifetime: int = 3600) -> CredentialAuthority:
    return CredentialAuthority(Ed25519PrivateKey.generate(), key_id=3, lifetime_secs=lifetime)


def _setup(heartbeat: int = 10) -> tuple[Registry, CredentialAuthority, Dispatcher, Stats]:
    registry, authority, stats = Registry(), _authority(), Stats()
    return registry, authority, Dispatcher(registry, authority, stats, heartbeat), stats


def _actor(registry: Registry, authority: CredentialAuthority, actr_type: str) -> ActorRecord:
    record = registry.register(parse_type(actr_type), 1, None, "", T0)
    cred = authority.issue(record.actr_id, T0)
    record.grant(cred, int(T0) + authority.lifetime_secs, b"token")
    return record
