"""deploy/ as issue 16 left it: the stop timeouts follow the daemons' stop grace, the
configs the compose file runs load and pass the checks that do not depend on the
container, and the signaling nodes' generated config is a valid cluster node's.
(scripts/check_deploy.sh validates the compose file and the units with their tools.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from actr import config as actr_config
from signaling.config import check_exposure, parse_config
from tests.deploy_kit import DEPLOY, compose_services, run_start_script

UNITS = DEPLOY / "systemd"
# What a daemon's stop takes besides the handlers' grace: its accepted requests commit
# (2 s at most), it unregisters (2 s at most), connections and the mailbox close.
STOP_MARGIN = 10


def unit_setting(unit: str, key: str) -> list[str]:
    return re.findall(rf"^{key}=(.*)$", (UNITS / unit).read_text(), re.M)


@pytest.mark.parametrize("config", ["actor.toml", "actor-relay.toml"])
def test_stop_timeouts_are_the_stop_grace_plus_the_margin(
    config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTR_REALM_SECRET", "a-realm-secret-of-enough-bytes")
    grace = actr_config.load(DEPLOY / config).stop_grace
    assert unit_setting("actr@.service", "TimeoutStopSec") == [f"{grace + STOP_MARGIN:g}"]
    service = "echo" if config == "actor.toml" else "echo-relay"
    assert f"/etc/actr/{config}" in compose_services()[service]
    period = re.search(r"stop_grace_period: (\d+)s", (DEPLOY / "compose.yaml").read_text())
    assert period is not None and int(period.group(1)) == grace + STOP_MARGIN


def test_units_keep_their_state_private_and_files_open() -> None:
    for unit in ("actr@.service", "actr-signaling.service"):
        assert unit_setting(unit, "StateDirectoryMode") == ["0700"]
        assert unit_setting(unit, "LimitNOFILE") == ["65536"]
        assert unit_setting(unit, "CapabilityBoundingSet") == [""]
    # ICE lists the interfaces over netlink when host_addresses is not given.
    assert "AF_NETLINK" in unit_setting("actr@.service", "RestrictAddressFamilies")[0]
    assert unit_setting("actr-signaling.service", "MemoryDenyWriteExecute") == ["true"]
    assert unit_setting("actr@.service", "MemoryDenyWriteExecute") == []


def test_the_deploy_actor_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTR_REALM_SECRET", "a-realm-secret-of-enough-bytes")
    direct = actr_config.load(DEPLOY / "actor.toml")
    relay = actr_config.load(DEPLOY / "actor-relay.toml")
    assert (direct.transport.force_relay, relay.transport.force_relay) == (False, True)
    assert direct.data_dir != relay.data_dir
    for cfg in (direct, relay):
        assert cfg.signaling.all_urls() == ["http://signaling-a:8081", "http://signaling-b:8081"]
        assert cfg.admin.listen == "127.0.0.1:9464"  # what the compose healthcheck asks


def test_the_signaling_nodes_config_as_compose_writes_it(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "signaling-cluster.toml", tmp_path)
    raw = run_start_script(tmp_path, tmp_path / "signaling.toml", "turn+secret/of=base64")
    assert (tmp_path / "signaling.toml").stat().st_mode & 0o777 == 0o600
    raw["realms"] = {"1": "a-realm-secret-of-enough-bytes"}  # as ACTR_REALM_SECRET gives it
    config = parse_config(raw, base_dir=tmp_path)
    assert config.redis_url == "redis://redis:6379/0"
    assert config.turn is not None and config.turn.secret == "turn+secret/of=base64"
    assert config.turn.urls == ("turn:coturn:3478",)
    check_exposure(config)  # a strong secret may serve on 0.0.0.0
