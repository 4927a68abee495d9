"""Daemon config (actr.toml): valid files load, every mistake is a ConfigError that says
what is wrong and where (DC-4 limits, ENV-6 dedup window, SIG-10 urls come from here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actr.config import ConfigError, load
from actr.framing import DEFAULT_MAX_MESSAGE

REPO = Path(__file__).resolve().parents[2]

FULL = """
[actor]
class = "echo:Echo"
type = "acme:echo:1.0"
pythonpath = [".", "lib"]
data_dir = "data/echo"
stop_grace = 2.5
max_concurrent_handlers = 4

[signaling]
urls = ["http://a:8081", "wss://b:8443"]
realm = 7
realm_secret = "s3cret"

[webrtc]
host_addresses = ["127.0.0.1"]
ice_servers = [{urls = "stun:stun.example.com:3478"}]
connect_timeout = 3
turn_urls = ["turn:turn.example.com:3478"]
force_relay = true
consent_interval = 1.5
consent_failures = 3

[limits]
max_message_size = 1048576
max_pending_calls = 50

[telemetry]
exporter = "otlp"
endpoint = "http://collector:4318/v1/traces"

[mailbox]
dedup_window = 60
"""


def write(tmp_path: Path, text: str, name: str = "actr.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    return str(info.value)


def test_the_shipped_example_loads() -> None:
    cfg = load(REPO / "examples" / "echo.toml")
    assert cfg.actor_class == "examples.echo:Echo"
    assert cfg.pythonpath == [REPO]
    assert cfg.data_dir == REPO / "data" / "echo"
    assert cfg.signaling.all_urls() == ["http://127.0.0.1:8081"]
    assert (cfg.signaling.realm, cfg.signaling.realm_secret) == (1, "dev-secret")
    assert cfg.transport.host_addresses == ["127.0.0.1"]
    assert cfg.transport.max_message_size == DEFAULT_MAX_MESSAGE


def test_every_key_is_read_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, FULL))
    assert cfg.actor_class == "echo:Echo"
    assert cfg.actr_type == "acme:echo:1.0"
    assert cfg.pythonpath == [tmp_path.resolve(), (tmp_path / "lib").resolve()]
    assert cfg.data_dir == (tmp_path / "data" / "echo").resolve()
    assert cfg.stop_grace == 2.5
    assert cfg.max_concurrent_handlers == 4
    assert cfg.signaling.all_urls() == ["http://a:8081", "wss://b:8443"]
    assert (cfg.signaling.realm, cfg.signaling.realm_secret) == (7, "s3cret")
    t = cfg.transport
    assert t.host_addresses == ["127.0.0.1"]
    assert t.ice_servers == [{"urls": "stun:stun.example.com:3478"}]
    assert t.connect_timeout == 3.0 and isinstance(t.connect_timeout, float)
    assert t.turn_urls == ["turn:turn.example.com:3478"]
    assert t.force_relay is True
    assert (t.consent_interval, t.consent_failures) == (1.5, 3)
    assert t.max_message_size == 1048576
    assert cfg.max_pending_calls == 50
    assert (cfg.trace_exporter, cfg.trace_endpoint) == ("otlp", "http://collector:4318/v1/traces")
    assert cfg.mailbox.dedup_window == 60.0


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, ""))
    assert cfg.signaling.all_urls() == ["http://127.0.0.1:8081"]
    assert cfg.transport.max_message_size == DEFAULT_MAX_MESSAGE
    assert cfg.max_pending_calls == 10_000
    assert cfg.data_dir is None


def test_realm_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTR_TEST_SECRET", "from-env")
    cfg = load(write(tmp_path, '[signaling]\nrealm_secret_env = "ACTR_TEST_SECRET"\n'))
    assert cfg.signaling.realm_secret == "from-env"
    monkeypatch.delenv("ACTR_TEST_SECRET")
    msg = refused(tmp_path, '[signaling]\nrealm_secret_env = "ACTR_TEST_SECRET"\n')
    assert "ACTR_TEST_SECRET" in msg and "not set" in msg


# -- file-level errors -------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load(path)
    assert str(path) in str(info.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[actor\nclass = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load(path)
    assert str(path) in str(info.value)


def test_a_directory_or_binary_file_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load(tmp_path)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError):
        load(binary)


# -- unknown names -----------------------------------------------------------------------


def test_unknown_section(tmp_path: Path) -> None:
    assert refused(tmp_path, "[actors]\nclass = 'a:B'\n") == "unknown section [actors]"


def test_unknown_keys_are_listed(tmp_path: Path) -> None:
    msg = refused(tmp_path, "[actor]\nclas = 'a:B'\ndatadir = 'x'\n")
    assert msg == "[actor] unknown keys: clas, datadir"


def test_a_section_that_is_not_a_table(tmp_path: Path) -> None:
    assert refused(tmp_path, "actor = 1\n") == "[actor] must be a table"


# -- wrong types and values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[signaling]\nrealm = "1"\n', "[signaling] realm: expected"),
        ("[signaling]\nrealm = true\n", "[signaling] realm: expected <class 'int'>, got a boolean"),
        ("[signaling]\nrealm = 1.5\n", "[signaling] realm: expected"),
        ("[signaling]\nurl = 8081\n", "[signaling] url: expected"),
        ("[actor]\nclass = 1\n", "[actor] class: expected"),
        ('[actor]\npythonpath = "."\n', "[actor] pythonpath: expected"),
        ("[actor]\npythonpath = [1]\n", "[actor] pythonpath: expected a list of strings"),
        ('[actor]\nstop_grace = "10"\n', "[actor] stop_grace: expected"),
        ("[actor]\nstop_grace = true\n", "got a boolean"),
        ("[actor]\nmax_concurrent_handlers = 1.0\n", "[actor] max_concurrent_handlers: expected"),
        ('[webrtc]\nforce_relay = "yes"\n', "[webrtc] force_relay: expected"),
        ('[webrtc]\nhost_addresses = "127.0.0.1"\n', "[webrtc] host_addresses: expected"),
        ("[webrtc]\nhost_addresses = [1]\n", "[webrtc] host_addresses: expected a list"),
        ('[webrtc]\nice_servers = ["stun:x"]\n', "[webrtc] ice_servers: each entry needs urls"),
        ("[webrtc]\nconnect_timeout = false\n", "got a boolean"),
        ('[limits]\nmax_message_size = "16M"\n', "[limits] max_message_size: expected"),
        ("[limits]\nmax_pending_calls = 1e4\n", "[limits] max_pending_calls: expected"),
        ("[telemetry]\nexporter = 1\n", "[telemetry] exporter: expected"),
        ('[mailbox]\ndedup_window = "10m"\n', "[mailbox] dedup_window: expected"),
    ],
)
def test_wrong_types_are_refused_with_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[signaling]\nurl = "ftp://x"\n', "must start with http(s):// or ws(s)://"),
        ("[signaling]\nurls = []\n", "[signaling] urls: expected a non-empty list"),
        ("[signaling]\nrealm = -1\n", "[signaling] realm: out of range"),
        ("[signaling]\nrealm = 4294967296\n", "[signaling] realm: out of range"),
        ("[actor]\nstop_grace = -1\n", "[actor] stop_grace must be between"),
        ("[actor]\nstop_grace = nan\n", "[actor] stop_grace: must be a finite number"),
        ("[actor]\nmax_concurrent_handlers = 0\n", "[actor] max_concurrent_handlers must be"),
        ("[webrtc]\nconnect_timeout = 0\n", "[webrtc] connect_timeout must be > 0"),
        ('[webrtc]\nturn_urls = ["stun:x"]\n', "[webrtc] turn_urls: expected turn:"),
        ("[webrtc]\nconsent_interval = 0.01\n", "[webrtc] consent_interval must be between"),
        ("[webrtc]\nconsent_failures = 0\n", "[webrtc] consent_failures must be between"),
        ("[limits]\nmax_message_size = 1023\n", "[limits] max_message_size must be between"),
        ("[limits]\nmax_pending_calls = 0\n", "[limits] max_pending_calls must be >= 1"),
        ('[telemetry]\nexporter = "jaeger"\n', "[telemetry] exporter must be one of"),
        ("[mailbox]\ndedup_window = -1\n", "[mailbox] dedup_window must be >= 0"),
    ],
)
def test_out_of_range_values_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


def test_connect_timeout_nan_is_refused(tmp_path: Path) -> None:
    assert "connect_timeout" in refused(tmp_path, "[webrtc]\nconnect_timeout = nan\n")


def test_dedup_window_nan_is_refused(tmp_path: Path) -> None:
    assert "dedup_window" in refused(tmp_path, "[mailbox]\ndedup_window = nan\n")


def test_ice_server_urls_of_the_wrong_type_are_refused(tmp_path: Path) -> None:
    assert "ice_servers" in refused(tmp_path, "[webrtc]\nice_servers = [{urls = 5}]\n")
