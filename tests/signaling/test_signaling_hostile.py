"""Hostile peers and operators' mistakes against the server as a real process (issue 11:
F1, F3, F4, F5).

Each test starts ``python -m signaling --config`` on loopback, attacks it, and
measures what the attack cost from ``/proc/PID/status`` (VmRSS, VmHWM) or what
it did to other clients. The figures are the README's "Signaling server limits".
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path

import aiohttp
import pytest
from signaling_kit import (
    REALMS,
    TIMEOUT,
    Actor,
    ask,
    join,
    open_socket,
    receive_env,
    register,
    relay,
    renew,
    send,
    ws_params,
)

from actr.errors import ErrorCode
from actr.identity import id_text
from actr.protocol.actr_pb2 import ActrId, ActrType
from actr.protocol.signaling_pb2 import ActrToSignaling, Ping, SubscribeActrUpRequest
from examples.launch import LISTEN_RE, Proc

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


def _config(workdir: Path, extra: str) -> Path:
    cfg = workdir / "signaling.toml"
    realms = "".join(f'{k} = "{v}"\n' for k, v in REALMS.items())
    cfg.write_text(extra + "\n[realms]\n" + realms)
    return cfg


@contextmanager
def signaling_process(
    workdir: Path, extra: str = "", nofile: int | None = None
) -> Iterator[tuple[Proc, str]]:
    """The server as its own process; ``nofile`` caps its open files (soft and hard)."""
    cmd = [sys.executable, "-m", "signaling", "--config", str(_config(workdir, extra))]
    cmd += ["--host", "127.0.0.1", "--port", "0"]
    if nofile is not None:
        # systemd's default soft limit, here as the hard one too: nothing can raise it.
        cmd = ["sh", "-c", f'ulimit -n {nofile} && exec "$@"', "sh", *cmd]
    proc = Proc("signaling", cmd, log_path=workdir / "signaling.log")
    try:
        url = proc.wait_for(LISTEN_RE, 30).group(1)
        yield proc, url
    finally:
        proc.stop()


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of ``pid``, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


async def server_stats(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(url + "/stats") as r:
        stats: dict[str, object] = await r.json()
        return stats


async def until_stats(
    http: aiohttp.ClientSession,
    url: str,
    holds: Callable[[dict[str, object]], bool],
    timeout: float = 20.0,
) -> dict[str, object]:
    """Reads /stats until ``holds``; a condition on another process, polled with a bound."""
    async with asyncio.timeout(timeout):
        while True:
            stats = await server_stats(http, url)
            if holds(stats):
                return stats
            await asyncio.sleep(0.05)


def _rejects(stats: dict[str, object]) -> dict[str, int]:
    rejects = stats["rejects"]
    assert isinstance(rejects, dict)
    return rejects


def _host_port(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    return parsed.hostname, parsed.port


# ---- F1: a restart ----


async def test_f1_after_a_kill_and_restart_old_credentials_name_no_new_actor(
    tmp_path: Path,
) -> None:
    """The server keeps its signing key across a SIGKILL; an actor registered before it
    keeps a valid-looking credential. After the restart a new registration of the same
    type never gets that serial back, so the old credential opens nothing and its renewal
    token renews nothing (ID-2)."""
    extra = 'signing_key_file = "signing.key"\n'
    async with aiohttp.ClientSession() as http:
        with signaling_process(tmp_path, extra) as (proc, url):
            old = [await register(http, url, "acme:echo:1.0") for _ in range(3)]
            proc.kill()
        with signaling_process(tmp_path, extra) as (_proc, url):
            new = await register(http, url, "acme:echo:1.0")
            assert new.signing_pubkey == old[0].signing_pubkey  # the same key, kept
            assert new.actr_id.serial_number > max(o.actr_id.serial_number for o in old)
            for o in old:
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await open_socket(http, url, id_text(o.actr_id), o.credential)
                assert info.value.status == 401
                status, _ = await renew(http, url, o.actr_id, o.renewal_token)
                assert status == 401


async def test_f1_a_second_server_on_the_same_serial_file_refuses_to_start(
    tmp_path: Path,
) -> None:
    """Two servers without Redis on one signing key would count serials from one
    high-water mark and hand out the same ones: the second exits 2, naming the first's
    pid. The lock dies with its holder, so after a SIGKILL a new server starts."""
    extra = 'signing_key_file = "signing.key"\n'
    cmd = [sys.executable, "-m", "signaling", "--config", str(_config(tmp_path, extra))]
    cmd += ["--host", "127.0.0.1", "--port", "0"]
    async with aiohttp.ClientSession() as http:
        with signaling_process(tmp_path, extra) as (first, url):
            second = await asyncio.create_subprocess_exec(
                *cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            async with asyncio.timeout(30):
                _, err = await second.communicate()
            stderr = err.decode()
            assert second.returncode == 2, stderr
            assert (
                f"signing.key.serials is in use by another signaling server "
                f"(pid {first.popen.pid})" in stderr
            )
            await register(http, url, "acme:echo:1.0")  # the first one serves on
            first.kill()
        with signaling_process(tmp_path, extra) as (_proc, url):
            await register(http, url, "acme:echo:1.0")


# ---- F3: a subscription flood ----


async def test_f3_subscription_flood_costs_at_most_32_mib(tmp_path: Path) -> None:
    """700 subscriptions of 512 KiB type names from one socket (within its message rate)
    raise the server's RSS by at most 32 MiB, measured after the socket closed."""
    extra = "[limits]\nmessages_per_sec = 1000\nmessage_burst = 1000\n"
    with signaling_process(tmp_path, extra) as (proc, url):
        async with aiohttp.ClientSession() as http:
            a = await join(http, url, "acme:flood:1.0")
            await ask(a, ActrToSignaling(ping=Ping()))
            before = memory_kib(proc.popen.pid)["VmRSS"]
            name = "n" * (512 * 1024)
            refused = 0
            for i in range(700):
                wanted = ActrType(manufacturer="acme", name=f"{name}{i}", version="1")
                answer = await ask(
                    a,
                    ActrToSignaling(
                        subscribe_actr_up_request=SubscribeActrUpRequest(target_type=wanted)
                    ),
                )
                refused += answer.server_to_actr.WhichOneof("payload") == "error" or (
                    answer.server_to_actr.subscribe_actr_up_response.WhichOneof("result") == "error"
                )
            await a.ws.close()
            await until_stats(http, url, lambda s: s["connections"] == 0)
            after = memory_kib(proc.popen.pid)["VmRSS"]
    grown_mib = (after - before) / 1024
    print(f"F3 subscription flood: RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB")
    assert grown_mib <= 32, f"RSS grew by {grown_mib:.0f} MiB"
    assert refused == 700


# ---- F4: actors that never read their socket ----


@contextmanager
def non_reading_socket(url: str, params: dict[str, str]) -> Iterator[socket.socket]:
    """A signaling socket whose client completes the upgrade and then never reads again."""
    host, port = _host_port(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(TIMEOUT)
        sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /signaling/ws?{urllib.parse.urlencode(params)} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            assert chunk, "closed during the upgrade"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        yield sock
    finally:
        sock.close()


async def test_f4_two_non_reading_actors_cost_at_most_64_mib(tmp_path: Path) -> None:
    """Two actors that never read, each fed 1 MiB relays by a sender, are closed (1013,
    counted) before the server's peak RSS grows by more than 64 MiB."""
    with signaling_process(tmp_path) as (proc, url):
        async with aiohttp.ClientSession() as http:
            senders = [await join(http, url, "acme:sender:1.0") for _ in range(2)]
            sinks = [await register(http, url, "acme:sink:1.0") for _ in range(2)]
            await ask(senders[0], ActrToSignaling(ping=Ping()))
            before = memory_kib(proc.popen.pid)["VmRSS"]
            with (
                non_reading_socket(url, ws_params(id_text(sinks[0].actr_id), sinks[0].credential)),
                non_reading_socket(url, ws_params(id_text(sinks[1].actr_id), sinks[1].credential)),
            ):
                candidate = "c" * (MiB - 4096)

                async def feed(sender: Actor, target: ActrId) -> None:
                    for _ in range(100):
                        await send(sender.ws, relay(sender, target, candidate))

                await asyncio.gather(
                    *(feed(s, k.actr_id) for s, k in zip(senders, sinks, strict=True))
                )
                with suppress(TimeoutError):
                    await until_stats(
                        http, url, lambda s: _rejects(s).get("slow_consumer", 0) >= 2, 10.0
                    )
                peak = memory_kib(proc.popen.pid)["VmHWM"]
                stats = await server_stats(http, url)
                # The sinks were closed long before the last relays: those answer NOT_FOUND.
                answers = [await receive_env(s.ws) for s in senders]
    cost_mib = (peak - before) / 1024
    print(f"F4 two non-reading actors: RSS {before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB")
    assert cost_mib <= 64, f"peak RSS {cost_mib:.0f} MiB over the start"
    assert _rejects(stats)["slow_consumer"] == 2
    assert [a.server_to_actr.error.code for a in answers] == [ErrorCode.NOT_FOUND] * 2


# ---- F5: slowloris ----


@asynccontextmanager
async def dripping_connections(url: str, count: int) -> AsyncIterator[int]:
    """``count`` connections from 127.0.0.1 that each get one answer (so the server has
    surely taken them in), then send part of a request line and stop; yields how many
    got their answer."""
    host, port = _host_port(url)
    loop = asyncio.get_running_loop()
    socks: list[socket.socket] = []

    async def one() -> bool:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        socks.append(s)
        try:
            async with asyncio.timeout(TIMEOUT):
                await loop.sock_connect(s, (host, port))
                await loop.sock_sendall(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b"ok"):
                    chunk = await loop.sock_recv(s, 4096)
                    if not chunk:
                        return False
                    answer += chunk
                await loop.sock_sendall(s, b"GET /signaling/ws?actor_id=")
                return True
        except (OSError, TimeoutError):
            return False

    try:
        served = await asyncio.gather(*(one() for _ in range(count)))
        yield sum(served)
    finally:
        for s in socks:
            s.close()


async def test_f5_slow_connections_from_one_address_do_not_stop_another(
    tmp_path: Path,
) -> None:
    """1,010 dripping connections from 127.0.0.1 to a server limited to 1,024 open files
    (systemd's default) leave registrations and sockets from 127.0.0.2 working."""
    with signaling_process(tmp_path, nofile=1024) as (_proc, url):
        async with dripping_connections(url, 1010) as served:
            other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=other) as http:
                for _ in range(3):
                    async with asyncio.timeout(TIMEOUT):
                        actor = await join(http, url, "acme:echo:1.0")
                        pong = await ask(actor, ActrToSignaling(ping=Ping()))
                    assert pong.server_to_actr.HasField("pong")
                    await actor.ws.close()
                stats = await server_stats(http, url)
    print(f"F5 slowloris: {served} of 1010 slow connections from 127.0.0.1 held")
    log = (tmp_path / "signaling.log").read_text()
    assert re.search(r"connection_refused reason=per_ip", log), log[-2000:]
    assert _rejects(stats).get("tcp_per_ip", 0) >= 1010 - 256
