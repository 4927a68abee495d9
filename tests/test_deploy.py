"""The deployment files in deploy/ stay loadable as the config code changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from actr import config as actr_config
from signaling.config import ConfigError, check_exposure, load_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_deploy_actor_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTR_REALM_SECRET", "s3cret")
    cfg = actr_config.load(DEPLOY / "actor.toml")
    assert cfg.signaling.realm_secret == "s3cret"
    assert cfg.actor_class == "examples.echo:Echo"
    assert cfg.transport.host_addresses is None


def test_deploy_signaling_config_loads_and_may_bind_publicly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACTR_REALM_SECRET", "n0t-a-placeholder-but-random")
    cfg = load_config(DEPLOY / "signaling.toml")
    assert cfg.port == 8081 and cfg.realms[1] == "n0t-a-placeholder-but-random"
    check_exposure(cfg)  # raises for a weak secret on a public address (F14)
    monkeypatch.setenv("ACTR_REALM_SECRET", "change-me")
    with pytest.raises(ConfigError, match="placeholder"):
        check_exposure(load_config(DEPLOY / "signaling.toml"))
