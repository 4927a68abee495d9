"""F14 on the runtime side: a placeholder or short realm secret is refused at start when
the signaling server is not on loopback; the daemon config reads secrets from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from actr.config import ConfigError, NodeConfig, SignalingConfig, from_dict
from actr.node import Node
from actr.realm_secret import check_client_secret, is_loopback_host, secret_weakness
from examples.echo import Echo

STRONG = "q8V1pZ0r3k9sYb2nW7x4"


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "change-me",
        "CHANGE_ME",
        "changeme",
        "dev-secret",
        "secret",
        "change-me-please-now!",
        "password",
        "x",
        "fifteen-bytes!!",
    ],
)
def test_f14_placeholders_and_short_secrets_are_weak(secret: str) -> None:
    assert secret_weakness(secret) is not None


def test_f14_a_random_secret_of_16_bytes_is_not_weak() -> None:
    assert secret_weakness(STRONG) is None
    assert secret_weakness("0123456789abcdef") is None  # exactly 16 bytes


def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.8.0.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback_host(host), host
    for host in ("0.0.0.0", "10.0.0.1", "signaling.example.com", "", "::"):
        assert not is_loopback_host(host), host


def test_f14_weak_secret_only_refused_beyond_loopback() -> None:
    check_client_secret("dev-secret", ["http://127.0.0.1:8081", "ws://localhost:9"])
    check_client_secret(STRONG, ["https://signaling.example.com"])
    with pytest.raises(ValueError, match=r"placeholder.*signaling\.example\.com"):
        check_client_secret("change-me", ["http://127.0.0.1:8081", "https://signaling.example.com"])
    with pytest.raises(ValueError, match="1 bytes long, shorter than 16"):
        check_client_secret("x", ["wss://signaling.example.com/ws"])


async def test_f14_node_refuses_to_start_with_a_weak_secret_for_a_remote_server(
    tmp_path: Path,
) -> None:
    cfg = NodeConfig(
        data_dir=tmp_path / "data",
        signaling=SignalingConfig(url="https://signaling.example.com", realm_secret="change-me"),
    )
    node = Node(cfg, Echo())
    reached: list[str] = []

    async def no_network() -> None:
        reached.append("signaling")
        raise AssertionError("signaling reached")

    node.signaling.start = no_network  # type: ignore[assignment,method-assign]
    with pytest.raises(ConfigError, match=r"\[signaling\] the realm secret is a placeholder"):
        await node.start()
    assert reached == [] and not (tmp_path / "data").exists()  # refused before anything


def test_realm_secret_file_in_the_daemon_config(tmp_path: Path) -> None:
    (tmp_path / "realm.secret").write_text(STRONG + "\n")
    cfg = from_dict({"signaling": {"realm_secret_file": "realm.secret"}}, tmp_path)
    assert cfg.signaling.realm_secret == STRONG
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        from_dict({"signaling": {"realm_secret_file": "empty"}}, tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        from_dict({"signaling": {"realm_secret_file": "missing"}}, tmp_path)
    with pytest.raises(ConfigError, match="not several"):
        from_dict(
            {"signaling": {"realm_secret": STRONG, "realm_secret_file": "realm.secret"}}, tmp_path
        )
