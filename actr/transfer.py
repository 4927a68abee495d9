"""Large transfers: a file or a byte source of any size, sent as a stream with its
size and SHA-256, resumed from an offset after a reconnect.

The receiving actor mixes in ``TransferSink`` (and sets ``transfer_dir``); the
sender calls ``send_file``. Three routes of package ``actr.transfer.v1``:

- ``Status`` (unary): how many bytes of the transfer the receiver holds;
- ``Put`` (client-streaming bytes, X-STR-6): appends from the offset in the
  call's metadata (``transfer.id``, ``transfer.offset``) to ``<id>.part``; a
  connection lost midway keeps what arrived;
- ``Commit`` (unary): size and SHA-256 checked, the file fsynced and moved to
  ``transfer_dir/<name>``; a mismatch discards the partial file.

``send_file`` asks Status, Puts from there, and on a lost connection (UNAVAILABLE,
TIMED_OUT, CONNECTION_NOT_READY, or NOT_FOUND while the receiver registers again)
asks again and goes on from what arrived, up to
``attempts`` times in a row without progress; then it Commits. The stream's
credit (X-STR-3) paces the sender to the receiver's disk. A Put holds one handler
slot of the receiver for its length.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from actr.actor import Context, rpc
from actr.errors import (
    ConnectionNotReady,
    InvalidArgument,
    NotFound,
    TimedOut,
    Unavailable,
)
from actr.protocol.actr_pb2 import ActrId
from actr.protocol.transfer_pb2 import (
    TransferCommit,
    TransferDone,
    TransferStatus,
    TransferStatusRequest,
)

__all__ = [
    "COMMIT_ROUTE",
    "PUT_ROUTE",
    "STATUS_ROUTE",
    "ByteSource",
    "TransferSink",
    "file_source",
    "send_file",
]

log = logging.getLogger(__name__)

STATUS_ROUTE = "actr.transfer.v1.Transfer.Status"
PUT_ROUTE = "actr.transfer.v1.Transfer.Put"
COMMIT_ROUTE = "actr.transfer.v1.Transfer.Commit"

# A transfer id names files on the receiver: nothing that could leave its directory.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CHUNK = 256 * 1024
# Errors that mean "the connection went" (or the receiver is restarting: not
# registered again yet), not "the receiver said no".
_RETRY = (Unavailable, TimedOut, ConnectionNotReady, NotFound)

# Bytes from an offset to the end: called again from where the receiver is at
# after a reconnect, and from 0 to hash what an earlier run sent.
ByteSource = Callable[[int], AsyncIterator[bytes]]


def _check_id(transfer_id: str) -> str:
    if not _ID.fullmatch(transfer_id):
        raise InvalidArgument(f"transfer id must match {_ID.pattern}, got {transfer_id!r}")
    return transfer_id


def _check_name(name: str) -> str:
    # A leading dot is refused too: the receiver's own ``.<id>.part``/``.done`` files.
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise InvalidArgument(f"transfer name must be a plain file name, got {name!r}")
    return name


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _file_id(path: Path) -> str:
    st = path.stat()
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def _fsync_and_move(part: Path, final: Path) -> None:
    with part.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TransferSink:
    """Mix into an Actor to receive transfers into ``transfer_dir``."""

    transfer_dir: ClassVar[Path | None] = None

    def _dir(self) -> Path:
        if self.transfer_dir is None:
            raise Unavailable("this actor has no transfer_dir")
        self.transfer_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.transfer_dir

    def _part(self, transfer_id: str) -> Path:
        return self._dir() / f".{_check_id(transfer_id)}.part"

    def _done(self, transfer_id: str) -> Path:
        return self._dir() / f".{_check_id(transfer_id)}.done"

    @rpc(STATUS_ROUTE)
    async def transfer_status(self, req: TransferStatusRequest, ctx: Context) -> TransferStatus:
        done = self._done(req.transfer_id)
        if done.exists():
            return TransferStatus.FromString(done.read_bytes())
        part = self._part(req.transfer_id)
        return TransferStatus(offset=part.stat().st_size if part.exists() else 0)

    @rpc(PUT_ROUTE)
    async def transfer_put(self, data: AsyncIterator[bytes], ctx: Context) -> TransferStatus:
        if ctx.attempt > 1:
            # Redelivered after a crash: its input stream died with the process, and
            # its offset is stale; the sender resumes from Status (nothing touched).
            raise Unavailable("a transfer Put does not survive a restart; resume")
        transfer_id = ctx.metadata.get("transfer.id", "")
        try:
            offset = int(ctx.metadata.get("transfer.offset", ""))
        except ValueError:
            raise InvalidArgument("transfer.offset must be an integer") from None
        part = self._part(transfer_id)
        if self._done(transfer_id).exists():
            raise InvalidArgument(f"transfer {transfer_id} is committed already")
        held = part.stat().st_size if part.exists() else 0
        if not 0 <= offset <= held:
            raise InvalidArgument(f"transfer {transfer_id}: resume at {held}, not {offset}")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, offset)  # bytes past the offset are sent again
            os.lseek(fd, offset, os.SEEK_SET)
            async for block in data:
                os.write(fd, block)
                offset += len(block)
        finally:
            os.close(fd)
        return TransferStatus(offset=offset)

    @rpc(COMMIT_ROUTE)
    async def transfer_commit(self, req: TransferCommit, ctx: Context) -> TransferDone:
        name = _check_name(req.name or req.transfer_id)
        done = self._done(req.transfer_id)
        if done.exists():
            status = TransferStatus.FromString(done.read_bytes())
            return TransferDone(size=status.size, sha256=status.sha256, name=name)
        part = self._part(req.transfer_id)
        if not part.exists():
            raise NotFound(f"transfer {req.transfer_id} has no data")
        size = part.stat().st_size
        digest = await asyncio.to_thread(_hash_file, part)
        if size != req.size or digest != req.sha256:
            part.unlink(missing_ok=True)
            raise InvalidArgument(
                f"transfer {req.transfer_id}: got {size} bytes sha256 {digest}, "
                f"sender says {req.size} bytes sha256 {req.sha256}; discarded"
            )
        final = self._dir() / name
        await asyncio.to_thread(_fsync_and_move, part, final)
        status = TransferStatus(offset=size, complete=True, size=size, sha256=digest)
        done.write_bytes(status.SerializeToString())
        log.info("transfer_committed id=%s name=%s size=%d", req.transfer_id, name, size)
        result = TransferDone(size=size, sha256=digest, name=name)
        await self.on_transfer(ctx, final, result)
        return result

    async def on_transfer(self, ctx: Context, path: Path, done: TransferDone) -> None:
        """A transfer was committed to ``path``; override to act on it."""


def file_source(path: Path, chunk: int = CHUNK) -> ByteSource:
    """A ByteSource reading ``path`` from an offset (in a thread, so the loop runs)."""

    async def read(offset: int) -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            f.seek(offset)
            while block := await asyncio.to_thread(f.read, chunk):
                yield block

    return read


class _Caller(Protocol):
    """What send_file needs of a node or a Context."""

    async def call(
        self,
        target: str | ActrId,
        route_key: str,
        request: Any,
        response_type: Any,
        *,
        timeout: float = ...,
    ) -> Any: ...

    async def call_client_stream(
        self,
        target: str | ActrId,
        route_key: str,
        source: Any,
        response_type: Any,
        *,
        timeout: float = ...,
        metadata: dict[str, str] | None = ...,
    ) -> Any: ...


async def _digest(source: ByteSource, end: int) -> hashlib._Hash:
    """The SHA-256 state over the source's first ``end`` bytes."""
    h = hashlib.sha256()
    seen = 0
    async for block in source(0):
        take = block[: end - seen]
        h.update(take)
        seen += len(take)
        if seen >= end:
            break
    if seen != end:
        raise InvalidArgument(f"source gave {seen} bytes, expected at least {end}")
    return h


async def send_file(
    caller: _Caller,
    target: str | ActrId,
    source: Path | str | ByteSource,
    *,
    transfer_id: str | None = None,
    name: str | None = None,
    timeout: float = 3600.0,
    attempts: int = 5,
) -> TransferDone:
    """Sends ``source`` (a path, or a ByteSource with ``transfer_id`` and ``name``)
    to the ``TransferSink`` actor ``target``; returns what the receiver committed.
    ``transfer_id`` makes a later call resume: by default a path's is derived from
    its absolute name, size and mtime."""
    if isinstance(source, str | Path):
        path = Path(source)
        if transfer_id is None:
            transfer_id = await asyncio.to_thread(_file_id, path)
        name = name or path.name
        read: ByteSource = file_source(path)
    else:
        if transfer_id is None or name is None:
            raise InvalidArgument("a byte source needs transfer_id and name")
        read = source
    _check_id(transfer_id)
    _check_name(name)
    meta = {"transfer.id": transfer_id}
    failures = 0
    h: hashlib._Hash | None = None
    sent = 0
    best = 0
    while True:
        try:
            status = await caller.call(
                target,
                STATUS_ROUTE,
                TransferStatusRequest(transfer_id=transfer_id),
                TransferStatus,
                timeout=30.0,
            )
            if status.complete:
                return TransferDone(size=status.size, sha256=status.sha256, name=name)
            offset = status.offset
            if offset > best:
                best, failures = offset, 0  # progress: the count is of failures in a row
            if h is None or sent != offset:
                # First run, or the receiver holds less than we sent: hash its prefix.
                h = await _digest(read, offset)
                sent = offset

            async def blocks(start: int = offset, state: Any = h) -> AsyncIterator[bytes]:
                nonlocal sent
                async for block in read(start):
                    state.update(block)
                    sent += len(block)
                    yield block

            await caller.call_client_stream(
                target,
                PUT_ROUTE,
                blocks(),
                TransferStatus,
                timeout=timeout,
                metadata={**meta, "transfer.offset": str(offset)},
            )
            break
        except _RETRY as e:
            failures += 1
            h = None  # what was hashed past the receiver's offset is unknown now
            log.warning("transfer_retry id=%s failures=%d error=%s", transfer_id, failures, e)
            if failures >= attempts:
                raise
            await asyncio.sleep(min(0.25 * 2**failures, 5.0))  # back off, then resume
    assert h is not None
    done: TransferDone = await caller.call(
        target,
        COMMIT_ROUTE,
        TransferCommit(transfer_id=transfer_id, size=sent, sha256=h.hexdigest(), name=name),
        TransferDone,
        timeout=timeout,
    )
    return done
