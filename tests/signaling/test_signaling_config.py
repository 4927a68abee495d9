"""signaling/config.py: the server's config file, its errors and overrides, and F14's
development secret kept to loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.config import (
    Config,
    ConfigError,
    Limits,
    Turn,
    check_exposure,
    load_config,
    parse_config,
)


def test_config_defaults_without_file() -> None:
    config = load_config(None)
    assert (config.host, config.port) == ("127.0.0.1", 8081)
    assert config.credential_lifetime_secs == 3600
    assert config.heartbeat_interval_secs == 10
    assert config.signing_key_file is None
    assert dict(config.realms) == {1: "dev-secret"}


def test_config_full_file(tmp_path: Path) -> None:
    path = tmp_path / "signaling.toml"
    path.write_text(
        'host = "0.0.0.0"\nport = 0\ncredential_lifetime_secs = 60\n'
        'heartbeat_interval_secs = 5\nsigning_key_file = "keys/signing.key"\n'
        'signing_key_id = 7\n[realms]\n1 = "realm-one-0123456789"\n42 = "realm-42-0123456789"\n'
    )
    config = load_config(path)
    assert config == Config(
        host="0.0.0.0",
        port=0,
        realms={1: "realm-one-0123456789", 42: "realm-42-0123456789"},
        credential_lifetime_secs=60,
        heartbeat_interval_secs=5,
        signing_key_file=tmp_path / "keys" / "signing.key",
        signing_key_id=7,
    )
    check_exposure(config)  # own secrets of 16+ bytes: any address is fine (F14)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('port = "80"', "port must be an integer"),
        ("port = 70000", "between 0 and 65535"),
        ("port = true", "port must be an integer"),
        ("prot = 1", "unknown key(s) prot"),
        ("[realms]", "[realms] is empty"),
        ('[realms]\nx = "s"', "realm id 'x' is not an integer"),
        ("[realms]\n1 = 5", "secret of realm 1"),
        ("credential_lifetime_secs = 0", "at least 1"),
        ("heartbeat_interval_secs = -1", "at least 1"),
        ("port = [", "not valid TOML"),
        ('redis_url = "http://x"', "redis_url must start with redis://"),
        ("reconnect_grace_secs = -1", "reconnect_grace_secs must be between"),
        ("[limits]\nmessages_per_sec = -1", "must not be negative"),
        ("[limits]\nburst = 1", "unknown key(s) in [limits]: burst"),
        ('[turn]\nurls = ["stun:x"]\nsecret = "s"', "turn: or turns: urls"),
        ('[turn]\nurls = ["turn:x"]', "secret (coturn's static-auth-secret) is required"),
    ],
)
def test_config_errors_are_clear(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert fragment in str(info.value)


def test_config_grace_redis_limits_turn(tmp_path: Path) -> None:
    path = tmp_path / "signaling.toml"
    path.write_text(
        'reconnect_grace_secs = 2.5\nredis_url = "redis://127.0.0.1:6379/0"\n'
        'redis_prefix = "prod"\n[realms]\n1 = "a"\n'
        "[limits]\nmessages_per_sec = 0\nconnects_per_ip_per_sec = 5\nconnect_burst = 9\n"
        '[turn]\nurls = ["turn:127.0.0.1:3478"]\nsecret = "s"\nttl_secs = 600\n'
    )
    config = load_config(path)
    assert config.reconnect_grace_secs == 2.5
    assert (config.redis_url, config.redis_prefix) == ("redis://127.0.0.1:6379/0", "prod")
    assert config.limits == Limits(messages_per_sec=0, connects_per_ip_per_sec=5, connect_burst=9)
    assert config.turn == Turn(urls=("turn:127.0.0.1:3478",), secret="s", ttl_secs=600)
    assert load_config(None).redis_url is None and load_config(None).turn is None


def test_config_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Path("/nonexistent/signaling.toml"))


def test_config_dev_secret_only_on_loopback() -> None:
    check_exposure(Config(host="127.0.0.1"))
    check_exposure(Config(host="::1"))
    with pytest.raises(ConfigError, match="development realm secret"):
        check_exposure(Config().with_overrides(host="0.0.0.0"))


def test_config_example_file_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "signaling" / "example.toml"
    config = load_config(example)
    assert config.port == 8081 and dict(config.realms) == {1: "dev-secret"}


def test_config_overrides() -> None:
    config = parse_config({"port": 9000}, base_dir=Path("."))
    assert config.with_overrides(port=0).port == 0
    assert config.with_overrides(host="::1").host == "::1"
    with pytest.raises(ConfigError):
        config.with_overrides(port=-1)
