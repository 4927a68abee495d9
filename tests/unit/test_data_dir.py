"""A daemon's data directory: owner-only modes (F10) and one daemon at a time (issue 10)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from actr.config import NodeConfig, SignalingConfig
from actr.data_dir import LOCK_NAME, DataDirInUse, DataDirLock, prepare
from actr.errors import ActrError
from actr.mailbox import Mailbox
from actr.node import Node
from examples.echo import Echo


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems start daemons with: without a chmod, files are 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def unreachable_node(data_dir: Path) -> Node:
    # Port 9 (discard) on loopback: nothing listens, so start fails at signaling.
    cfg = NodeConfig(
        data_dir=data_dir,
        signaling=SignalingConfig(url="http://127.0.0.1:9", realm_secret="dev-secret"),
    )
    return Node(cfg, Echo())


@pytest.mark.usefixtures("usual_umask")
async def test_f10_daemon_creates_its_data_dir_0700_and_mailbox_files_0600(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var" / "echo"
    with pytest.raises(ActrError):
        await unreachable_node(data).start()  # prepares the directory before signaling
    assert mode(data) == 0o700
    assert mode(data / "mailbox.db") == 0o600
    assert mode(data / LOCK_NAME) == 0o600
    # SQLite gives its -wal and -shm files the database file's mode.
    box = await Mailbox.open(data / "mailbox.db")
    await box.enqueue(caller="1@1/a:b:1", request_id="r", priority=1, payload_type=0, envelope=b"")
    assert mode(data / "mailbox.db-wal") == 0o600
    assert mode(data / "mailbox.db-shm") == 0o600
    await box.close()


@pytest.mark.usefixtures("usual_umask")
async def test_f10_mailbox_open_creates_the_file_0600_in_a_0700_directory(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "new" / "mailbox.db")
    await box.enqueue(caller="1@1/a:b:1", request_id="r", priority=1, payload_type=0, envelope=b"")
    assert mode(tmp_path / "new") == 0o700
    assert [mode(tmp_path / "new" / f"mailbox.db{s}") for s in ("", "-wal", "-shm")] == [0o600] * 3
    await box.close()


def test_f10_a_looser_directory_and_its_files_are_tightened_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "echo"
    data.mkdir()
    os.chmod(data, 0o755)
    for name in ("mailbox.db", "mailbox.db-wal", "identity.pb"):
        (data / name).write_bytes(b"x")
        os.chmod(data / name, 0o644)
    (data / "notes.txt").write_text("not ours")
    os.chmod(data / "notes.txt", 0o644)
    with caplog.at_level(logging.WARNING, logger="actr.data_dir"):
        prepare(data)
    assert mode(data) == 0o700
    assert [mode(data / n) for n in ("mailbox.db", "mailbox.db-wal", "identity.pb")] == [0o600] * 3
    assert mode(data / "notes.txt") == 0o644  # not the runtime's: left alone
    tightened = [r.getMessage() for r in caplog.records if "data_dir_mode_tightened" in r.message]
    assert len(tightened) == 4
    assert f"path={data} old=755 new=700" in tightened[0]


def test_lock_refuses_a_second_holder_naming_the_directory_and_pid(tmp_path: Path) -> None:
    prepare(tmp_path)
    first = DataDirLock.acquire(tmp_path)
    with pytest.raises(DataDirInUse) as refused:
        DataDirLock.acquire(tmp_path)  # flock: another open file, even in one process
    assert refused.value.pid == os.getpid()
    assert str(tmp_path) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
    first.release()
    DataDirLock.acquire(tmp_path).release()


def test_lock_held_by_another_process_names_its_pid_and_dies_with_it(tmp_path: Path) -> None:
    prepare(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from actr.data_dir import DataDirLock;"
            f"DataDirLock.acquire(Path({str(tmp_path)!r})); print('held', flush=True);"
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock.acquire(tmp_path)
        assert refused.value.pid == holder.pid
    finally:
        holder.kill()  # no clean release: the kernel drops the lock with the process
        holder.wait()
    DataDirLock.acquire(tmp_path).release()


async def test_a_second_node_on_a_locked_data_dir_refuses_to_start(tmp_path: Path) -> None:
    prepare(tmp_path)
    held = DataDirLock.acquire(tmp_path)
    try:
        with pytest.raises(DataDirInUse, match=f"data directory {tmp_path} is in use"):
            await unreachable_node(tmp_path).start()
        assert not (tmp_path / "mailbox.db").exists()  # refused before the mailbox opened
    finally:
        held.release()


async def test_a_node_that_failed_to_start_releases_its_lock(tmp_path: Path) -> None:
    with pytest.raises(ActrError):
        await unreachable_node(tmp_path).start()
    DataDirLock.acquire(tmp_path).release()


def test_a_data_dir_that_is_a_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "echo"
    path.write_text("")
    path.chmod(0o644)
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        prepare(path)
    assert mode(path) == 0o644
