"""One ``sqlite3`` connection for asyncio code: on a thread of our own
(``SqliteThread``), or on the event loop's thread (``InlineSqlite``).

The mailbox runs a whole batch (many statements, one transaction) per hop to the
connection's thread. aiosqlite offers one hop per statement through its public
API, and a whole function only through private attributes; this is that one
mechanism, small and ours: ``submit(fn, *args)`` runs ``fn(connection, *args)``
on the thread and returns a future for its result (or its exception).

Calls run one at a time, in the order submitted, each to its end before the next
starts: a function that begins and commits a transaction is a unit nothing else
on this connection interleaves with. The connection is made on the thread, in
autocommit mode (``isolation_level=None``), and used there only.

``InlineSqlite`` has the same API and runs each call at once, on the caller's
thread (the loop's), returning a future that is already done. On this machine a
hop to a thread and back costs ~200-300 us and a small WAL commit with
synchronous=NORMAL ~25 us (../shared/tools/commitcost.py), so the mailbox commits
inline unless each commit fsyncs (``[mailbox] durability = "power"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["InlineSqlite", "SqliteConnection", "SqliteThread"]

T = TypeVar("T")

_Job = tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # its waiter gave up (cancelled): the result has nobody to go to
        return
    if error is None:
        fut.set_result(result)
    else:
        fut.set_exception(error)


class SqliteThread:
    """A connection and the thread that owns it. Open with ``await SqliteThread.open``."""

    inline = False

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._gone: asyncio.Future[None] = loop.create_future()  # the thread has ended

    @classmethod
    async def open(cls, path: str | Path, *, name: str = "actr-sqlite") -> SqliteThread:
        loop = asyncio.get_running_loop()
        self = cls(loop)
        opened: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(str(path), opened), name=name, daemon=True
        )
        self._thread.start()
        await opened
        return self

    def _run(self, path: str, opened: asyncio.Future[None]) -> None:
        try:
            db = sqlite3.connect(path, isolation_level=None)
        except BaseException as e:
            self._loop.call_soon_threadsafe(_settle, opened, None, e)
            return
        self._loop.call_soon_threadsafe(_settle, opened, None, None)
        try:
            while (job := self._jobs.get()) is not None:
                fut, fn, args = job
                result: Any = None
                error: BaseException | None = None
                try:
                    result = fn(db, *args)
                except BaseException as e:
                    error = e
                self._reply(fut, result, error)
        finally:
            db.close()
            self._reply(self._gone, None, None)

    def _reply(self, fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
        # RuntimeError: the loop is closed, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle, fut, result, error)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Runs ``fn(connection, *args)`` on the thread after what was submitted before."""
        if self._closed:
            raise RuntimeError("connection is closed")
        fut: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((fut, fn, args))
        return fut

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """One statement; its rows."""
        return await self.submit(_execute, sql, params)

    async def create_function(self, name: str, narg: int, fn: Callable[..., Any]) -> None:
        """A SQL function calling ``fn`` (on the connection's thread)."""
        await self.submit(_create_function, name, narg, fn)

    async def close(self) -> None:
        """Closes the connection once what was submitted before has run."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if self._thread is not None:
            await asyncio.shield(self._gone)


def _execute(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return db.execute(sql, params).fetchall()


def _create_function(db: sqlite3.Connection, name: str, narg: int, fn: Callable[..., Any]) -> None:
    db.create_function(name, narg, fn)


class InlineSqlite:
    """A connection used on the thread that opened it: ``submit`` runs ``fn`` now."""

    inline = True

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, *, name: str = "") -> InlineSqlite:
        return cls(sqlite3.connect(str(path), isolation_level=None))

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs ``fn(connection, *args)`` here and now."""
        if self._closed:
            raise RuntimeError("connection is closed")
        return fn(self.db, *args)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        if self._closed:
            raise RuntimeError("connection is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            fut.set_result(fn(self.db, *args))
        except Exception as e:
            fut.set_exception(e)
        return fut

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self.run(fn, *args)

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self.run(_execute, sql, params)

    async def create_function(self, name: str, narg: int, fn: Callable[..., Any]) -> None:
        self.run(_create_function, name, narg, fn)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.db.close()


SqliteConnection = SqliteThread | InlineSqlite
