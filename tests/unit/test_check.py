"""``actr check CONFIG`` and ``actr-signaling --check CONFIG`` (issue 16): a good config
prints one OK line and exits 0; a bad one lists every problem, not only the first the
loader meets, and exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actr import check
from signaling import config_check

REPO = Path(__file__).resolve().parents[2]

GOOD = f"""
[actor]
class = "examples.echo:Echo"
pythonpath = ["{REPO}"]
data_dir = "data/echo"

[signaling]
url = "http://127.0.0.1:8081"
realm_secret = "dev-secret"

[admin]
listen = "127.0.0.1:9464"

[logging]
format = "json"
"""

# One mistake per line below, across sections, plus what only start would find.
BAD = """
[actor]
class = "examples.echo:NoSuchActor"
pythonpath = ["{repo}", "missing-dir"]
data_dir = "data/echo"
stop_grace = -1
colour = "blue"

[signaling]
urls = ["http://signal.example.com:8081", "ftp://elsewhere"]
realm = -5
realm_secret = "dev-secret"

[webrtc]
force_relay = "yes"

[admin]
listen = "nowhere"
signaling_grace = -1

[logging]
format = "xml"

[colours]
x = 1
"""

BAD_PROBLEMS = [
    "[actor] stop_grace must be between 0 and 3600 seconds",
    "[actor] unknown keys: colour",
    "[signaling] url 'ftp://elsewhere' must start with http(s):// or ws(s)://",
    "[signaling] realm: out of range",
    "[webrtc] force_relay: expected <class 'bool'>, got str",
    "[admin] listen: 'nowhere': expected host:port, e.g. 127.0.0.1:9464",
    "[admin] signaling_grace must be between 0 and 86400 seconds",
    "[logging] format must be one of text, json",
    "unknown section [colours]",
    "[actor] class: examples.echo:NoSuchActor is not an Actor subclass",
    "[actor] pythonpath: {tmp}/missing-dir is not a directory",
]


def test_a_good_config_prints_one_ok_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "echo.toml"
    path.write_text(GOOD)
    assert check.main(path) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{path}: OK (examples.echo:Echo, data_dir {tmp_path / 'data' / 'echo'}, "
        "signaling http://127.0.0.1:8081)"
    ]
    assert not (tmp_path / "data").exists()  # checked, not created


def test_a_bad_config_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD.format(repo=REPO))
    cfg, problems = check.check_file(path)
    assert cfg is None
    assert problems == [p.format(tmp=tmp_path) for p in BAD_PROBLEMS]
    assert check.main(path) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{path}: {p.format(tmp=tmp_path)}" for p in BAD_PROBLEMS]
    assert f"11 problems in {path}" in captured.err


def test_a_weak_secret_is_listed_beside_other_mistakes(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(
        GOOD.replace('url = "http://127.0.0.1:8081"', 'url = "http://signal.example.com:8081"')
        + "[webrtc]\nconnect_timeout = 0\n"
    )
    _, problems = check.check_file(path)
    assert problems[0] == "[webrtc] connect_timeout must be > 0"
    assert problems[1].startswith("[signaling] the realm secret is a placeholder: refused")
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[actor\n", "is not valid TOML"),
        (None, "not found"),
        ("[signaling]\nrealm_secret_file = 'nope'\n", "realm_secret_file: cannot read"),
        ("[signaling]\nrealm_secret = 'a'\nrealm_secret_env = 'HOME'\n", "give one of"),
        ("[actor]\nclass = 'examples.echo:Echo'\n", "[actor] data_dir is required"),
        ("[actor]\nclass = 'x'\ndata_dir = 'd'\n", "[actor] class must be 'module:ClassName'"),
        ("[actor]\nclass = 'examples.echo:Echo'\ndata_dir = '/proc/1/x'\n", "[actor] data_dir"),
    ],
)
def test_each_kind_of_problem(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / "c.toml"
    if text is not None:
        path.write_text(text.replace("[actor]\n", f"[actor]\npythonpath = ['{REPO}']\n"))
    _, problems = check.check_file(path)
    assert any(problem in p for p in problems), problems


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "d").write_text("")
    path = tmp_path / "c.toml"
    path.write_text(GOOD.replace('"data/echo"', '"d"'))
    assert check.check_file(path)[1] == [f"[actor] data_dir: {tmp_path / 'd'} is not a directory"]


SIGNALING_BAD = """
host = "0.0.0.0"
port = 99999
heartbeat_interval_secs = 0
signing_key_file = "signing.key"
colour = 1

[realms]
1 = "dev-secret"
2 = "short"
x = "abc"

[limits]
messages_per_sec = "fast"
bogus = 3

[turn]
urls = ["http://turn.example.com"]
"""


def test_signaling_check_lists_every_problem(tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o644)
    path = tmp_path / "signaling.toml"
    path.write_text(SIGNALING_BAD)
    config, problems = config_check.check_file(path)
    assert config is None
    src = str(path)
    assert problems == [
        f"{src}: port must be between 0 and 65535, got 99999",
        f"{src}: heartbeat_interval_secs must be at least 1, got 0",
        f"{src}: unknown key(s) colour; known keys: " + problems[2].split("known keys: ")[1],
        f"{src}: realm id 'x' is not an integer",
        f"{src} [limits]: messages_per_sec must be a number, got 'fast'",
        f"{src}: unknown key(s) in [limits]: bogus; known keys: "
        + problems[5].split("known keys: ")[1],
        f"{src} [turn]: urls must be a list of turn: or turns: urls",
        # The realms that passed alone are still checked against the public address.
        "refusing to serve the development realm secret 'dev-secret' on 0.0.0.0: configure "
        "[realms] with your own secrets, or bind 127.0.0.1",
        problems[8],
        f"signing key file {key} has mode 0644: group or others may read or write it; make "
        f"it the server's own (chmod 600 {key})",
    ]
    assert problems[8].startswith("refusing to serve realm 2 on 0.0.0.0: its secret is 5 bytes")
    assert key.stat().st_mode & 0o777 == 0o644  # read, never changed


def test_signaling_check_ok_and_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "signaling.toml"
    path.write_text('[realms]\n1 = "dev-secret"\n')
    assert config_check.main(path) == 0
    assert capsys.readouterr().out == f"{path}: OK (127.0.0.1:8081, realms 1, in memory)\n"
    # The command line's --host counts: the development secret is refused off loopback.
    assert config_check.main(path, host="0.0.0.0") == 2
    assert "refusing to serve the development realm secret" in capsys.readouterr().out
    # A missing key file is fine where it can be created, and is not created.
    path.write_text(f'signing_key_file = "{tmp_path}/keys/k"\n')
    assert config_check.check_file(path)[1] == []
    assert not (tmp_path / "keys").exists()


def test_the_commands_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text(BAD.format(repo=REPO))
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=env, timeout=60
        )

    assert run("-m", "actr", "check", str(good)).returncode == 0
    done = run("-m", "actr", "check", str(bad))
    assert done.returncode == 2 and len(done.stdout.splitlines()) == len(BAD_PROBLEMS)
    sig = tmp_path / "s.toml"
    sig.write_text(SIGNALING_BAD)
    assert run("-m", "signaling", "--check", str(sig)).returncode == 2
    sig.write_text("port = 0\n")
    assert run("-m", "signaling", "--check", str(sig)).returncode == 0
