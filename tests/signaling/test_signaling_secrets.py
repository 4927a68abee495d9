"""F14 on the server: weak realm secrets are refused on a non-loopback address, secrets can
come from the environment or a file, and a signing key file open to group or others is
refused at start."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from signaling.config import Config, ConfigError, check_exposure, load_config, parse_config
from signaling.signing_key import load_or_create_key

ROOT = Path(__file__).resolve().parents[2]
STRONG = "q8V1pZ0r3k9sYb2nW7x4"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("change-me", "is a placeholder"),
        ("changeme", "is a placeholder"),
        ("x", "is 1 bytes long, shorter than 16"),
        ("fifteen-bytes!!", "is 15 bytes long"),
    ],
)
def test_f14_weak_realm_secrets_refused_on_a_public_address(secret: str, why: str) -> None:
    public = Config(host="0.0.0.0", realms={1: STRONG, 7: secret})
    with pytest.raises(ConfigError, match=re.escape(f"realm 7 on 0.0.0.0: its secret {why}")):
        check_exposure(public)
    check_exposure(Config(host="127.0.0.1", realms={7: secret}))  # loopback: allowed
    check_exposure(Config(host="::1", realms={7: secret}))


def test_f14_strong_secrets_may_serve_any_address() -> None:
    check_exposure(Config(host="0.0.0.0", realms={1: STRONG, 2: "0123456789abcdef"}))


def test_realm_secret_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTR_TEST_REALM_SECRET", STRONG)
    (tmp_path / "realm2.secret").write_text("file-secret-0123456789\n")
    raw = {"realms": {"1": {"env": "ACTR_TEST_REALM_SECRET"}, "2": {"file": "realm2.secret"}}}
    config = parse_config(raw, base_dir=tmp_path)
    assert dict(config.realms) == {1: STRONG, 2: "file-secret-0123456789"}
    monkeypatch.delenv("ACTR_TEST_REALM_SECRET")
    with pytest.raises(ConfigError, match="ACTR_TEST_REALM_SECRET is not set"):
        parse_config(raw, base_dir=tmp_path)
    for bad in ({"env": 5}, {"path": "x"}, {"env": "A", "file": "b"}):
        with pytest.raises(ConfigError, match="secret of realm 1"):
            parse_config({"realms": {"1": bad}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        parse_config({"realms": {"1": {"file": "missing"}}}, base_dir=tmp_path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_f14_signing_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.key"
    load_or_create_key(path)  # created 0600
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"mode {mode:04o}.*chmod 600"):
        load_or_create_key(path)
    path.chmod(0o600)
    load_or_create_key(path)


@pytest.mark.e2e
async def test_f14_server_process_with_a_readable_key_exits_2(tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    load_or_create_key(key)
    key.chmod(0o644)
    cfg = tmp_path / "signaling.toml"
    cfg.write_text(f'host = "127.0.0.1"\nport = 0\nsigning_key_file = "{key}"\n')
    load_config(cfg)  # the file itself is fine
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling",
        "--config",
        str(cfg),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 2
    assert out == b""  # it never listened
    assert f"signing key file {key} has mode 0644".encode() in err
    assert b"Traceback" not in err
