"""RPC benchmark: raw aiortc, actr and grpc.aio side by side, in one run, on loopback.

    python bench/rpc.py [--calls 2000] [--inflight 64] [--oneway 5000] [--rounds 3]
                        [--first 5] [--only default,handlers8,power]

Each round runs, one after the other:
(a) raw aiortc (bench/rpc_peers.py): caller here, echo in a child process, one
    reliable ordered data channel: 100-byte ping-pong p50/p99, round trips per
    second with 64 in flight, one-way 100-byte messages per second;
(b) actr: a signaling server and the echo actor daemon as processes of their own, a
    client here; every request committed to the daemon's SQLite mailbox before its
    handler runs. Sequential calls, calls with 64 in flight, one-way tells (then one
    call answered after them: the mailbox is FIFO). Once per daemon setting:
    "default" (max_concurrent_handlers = 1, [mailbox] durability = "process"),
    "handlers8" (max_concurrent_handlers = 8), "power" (durability = "power");
(c) grpc.aio (bench/rpc_peers.py): grpcio's asyncio server in a child process, a
    generic unary handler, the same 100-byte payload;
(d) first call to a new peer: actr (a new client: register, discover, ICE, DTLS,
    SCTP, the call and its answer; the daemon already running) against raw aiortc
    (a new peer connection to a running echo process and one round trip).
Ratios are taken within a round; the tables print each figure's median over the
rounds and the median of the per-round ratios (the machine is shared: absolute
figures drift, ratios much less). Both sides run on uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rpc_peers import PAYLOAD, bench_grpc, bench_raw, measure, raw_first_calls  # noqa: E402

SETTINGS: dict[str, dict[str, dict[str, object]]] = {
    "default": {},
    "handlers8": {"actor": {"max_concurrent_handlers": 8}},
    "power": {"mailbox": {"durability": "power"}},
}
TARGET = "acme:echo:1.0"
ROUTE = "echo.v1.Echo.Say"


async def bench_actr(
    setting: str, calls: int, inflight: int, oneway: int, first: int
) -> dict[str, float]:
    import actr
    from examples.echo_pb2 import SayReply, SayRequest
    from examples.launch import start_actor, start_signaling, write_actor_config

    with tempfile.TemporaryDirectory(prefix="actr-bench-") as tmp:
        work = Path(tmp)
        sig, url = start_signaling(work)
        echo = None
        req = SayRequest(blob=PAYLOAD)

        def client() -> Any:
            return actr.connect(
                url, realm=1, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
            )

        try:
            config = write_actor_config(
                work, "echo", "examples.echo:Echo", url, sections=SETTINGS[setting]
            )
            echo, _ = start_actor(work, "echo", config)
            firsts = []
            for _ in range(first):
                t0 = time.perf_counter()
                async with client() as c:
                    await c.call(TARGET, ROUTE, req, SayReply, timeout=30)
                    firsts.append(time.perf_counter() - t0)
            async with client() as c:

                async def call(i: int) -> None:
                    await c.call(TARGET, ROUTE, req, SayReply, timeout=60)

                out = await measure(call, calls, inflight)
                t0 = time.perf_counter()
                for _ in range(oneway):
                    await c.tell(TARGET, ROUTE, req)
                await c.call(TARGET, ROUTE, req, SayReply, timeout=120)
                out["oneway_per_s"] = oneway / (time.perf_counter() - t0)
        finally:
            if echo is not None:
                echo.stop()
            sig.stop()
    if firsts:
        out["first_call_ms"] = statistics.median(firsts) * 1000
    return out


ROWS = [
    ("sequential p50 (ms)", "p50_ms", False),
    ("sequential p99 (ms)", "p99_ms", False),
    ("round trips/s, {n} in flight", "rps_inflight", True),
    ("one-way 100 B msg/s", "oneway_per_s", True),
]


def _med(rounds: list[dict[str, dict[str, float]]], who: str, key: str) -> float | None:
    values = [r[who][key] for r in rounds if key in r.get(who, {})]
    return statistics.median(values) if values else None


def _ratio(rounds: list[dict[str, dict[str, float]]], a: str, b: str, key: str) -> float | None:
    values = [r[a][key] / r[b][key] for r in rounds if key in r.get(a, {}) and key in r.get(b, {})]
    return statistics.median(values) if values else None


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def report(rounds: list[dict[str, dict[str, float]]], settings: list[str], inflight: int) -> None:
    print(f"\nmedians of {len(rounds)} rounds (ratios: median of the per-round ratios)")
    for setting in settings:
        who = f"actr:{setting}"
        print(f"\n[{setting}] {SETTINGS[setting] or 'max_concurrent_handlers = 1, process'}")
        head = ("metric", "raw aiortc", "actr", "actr/raw", "grpc.aio", "actr/grpc")
        print(f"{head[0]:<30}{head[1]:>11}{head[2]:>10}{head[3]:>10}{head[4]:>10}{head[5]:>11}")
        for label, key, higher in ROWS:
            note = "higher is better" if higher else "lower is better"
            print(
                f"{label.format(n=inflight):<30}"
                f"{_fmt(_med(rounds, 'raw', key), '11.2f')}"
                f"{_fmt(_med(rounds, who, key), '10.2f')}"
                f"{_fmt(_ratio(rounds, who, 'raw', key), '10.2f')}"
                f"{_fmt(_med(rounds, 'grpc', key), '10.2f')}"
                f"{_fmt(_ratio(rounds, who, 'grpc', key), '11.2f')}  ({note})"
            )
    print(f"\n{'first call to a new peer (ms)':<30}{'raw aiortc':>11}{'actr':>10}{'actr/raw':>10}")
    for setting in settings:
        who = f"actr:{setting}"
        print(
            f"{'  ' + setting:<30}{_fmt(_med(rounds, 'raw', 'first_call_ms'), '11.1f')}"
            f"{_fmt(_med(rounds, who, 'first_call_ms'), '10.1f')}"
            f"{_fmt(_ratio(rounds, who, 'raw', 'first_call_ms'), '10.2f')}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="raw aiortc vs actr vs grpc.aio on loopback")
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls")
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--oneway", type=int, default=5000, help="one-way messages")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first", type=int, default=5, help="first calls per round")
    parser.add_argument("--only", default=",".join(SETTINGS), help="actr settings to run")
    parser.add_argument("--no-grpc", action="store_true")
    args = parser.parse_args()
    settings = [s for s in args.only.split(",") if s]
    run: Callable[[Any], Any]
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(args.rounds):
        got: dict[str, dict[str, float]] = {}
        got["raw"] = run(bench_raw(args.calls, args.inflight, args.oneway))
        firsts = run(raw_first_calls(args.first))
        if firsts:
            got["raw"]["first_call_ms"] = statistics.median(firsts) * 1000
        for setting in settings:
            got[f"actr:{setting}"] = run(
                bench_actr(setting, args.calls, args.inflight, args.oneway, args.first)
            )
        if not args.no_grpc:
            got["grpc"] = asyncio.run(bench_grpc(args.calls, args.inflight))
        rounds.append(got)
        print(
            f"round {r + 1}: "
            + "; ".join(
                f"{who} p50 {v['p50_ms']:.2f} ms, {v['rps_inflight']:.0f} rt/s"
                + (f", {v['oneway_per_s']:.0f} one-way/s" if "oneway_per_s" in v else "")
                + (f", first {v['first_call_ms']:.0f} ms" if "first_call_ms" in v else "")
                for who, v in got.items()
            ),
            flush=True,
        )
    report(rounds, settings, args.inflight)
    return 0


if __name__ == "__main__":
    sys.exit(main())
