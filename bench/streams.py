"""Stream throughput: a reliable actr stream against raw aiortc, in one run, on loopback.

    python bench/streams.py [--mb 100] [--rounds 3] [--chunk 65528] [--actr-chunk N]
                            [--warm-mb 4] [--verify] [--only raw,actr]
                            [--profile-sender FILE] [--py-spy-receiver FILE]

Each round runs, one after the other (odd rounds raw first, even rounds actr first):
(a) raw aiortc (bench/stream_peers.py): the sender here, a sink in a child process,
    one peer connection, one reliable ordered data channel; ``--mb`` MB in
    ``--chunk``-byte messages with bufferedAmount backpressure (actr's own high and
    low water marks), then a text "end" the sink answers with its count;
(b) actr: a signaling server and a daemon running ``bench.stream_peers:Sink`` as
    processes of their own, a client here. The client calls bench.v1.Sink.Begin (the
    sink registers the client's stream and consumes it in a task), then
    ``open_stream`` and ``send`` of the same bytes in ``--actr-chunk``-byte chunks
    (default: ``--chunk``), ``end()``, and bench.v1.Sink.Result, answered once the
    sink's reader saw the end.
Both figures are MB/s (10^6 bytes) from the first send to the receiver's answer, after
a warm-up transfer of ``--warm-mb`` MB on the same connection. The ratio actr/raw is
taken within a round; the table prints each round and the medians. Also shown: the
receiver's peak RSS growth over the measured transfer (VmHWM after minus before) and
the CPU seconds of each side, and their median ratio raw/actr per side (CPU per byte:
steadier than MB/s on a shared machine). Both sides run on uvloop when installed.

``--profile-sender FILE`` runs the actr sending side under cProfile (pstats to
FILE.<round>; it slows the sender down a lot);
``--py-spy-receiver FILE`` records the actr daemon with py-spy during the transfer
(collapsed stacks in FILE.<round>.txt, for flamegraph.pl or speedscope; py-spy
must be installed next to this Python).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
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

from stream_peers import (  # noqa: E402
    RawPeer,
    cpu_seconds,
    expected_digest,
    pattern,
    peak_rss_kib,
)

TARGET = "bench:sink:1.0"
BEGIN, RESULT = "bench.v1.Sink.Begin", "bench.v1.Sink.Result"
MB = 1_000_000


def _check(got: dict[str, Any], total: int, chunk: int, verify: bool, who: str) -> None:
    if got["bytes"] != total:
        raise RuntimeError(f"{who}: the receiver counted {got['bytes']} bytes of {total}")
    if verify and got["sha256"] != expected_digest(total, chunk):
        raise RuntimeError(f"{who}: the bytes received differ from those sent")


async def bench_raw(total: int, warm: int, chunk: int, verify: bool) -> dict[str, float]:
    peer = RawPeer(verify)
    try:
        await peer.connect()
        if warm:
            _, got = await peer.transfer(warm, chunk)
            _check(got, warm, chunk, False, "raw warm-up")
        rss0 = peak_rss_kib(peer.pid)
        cpu_rx0, cpu_tx0 = cpu_seconds(peer.pid), time.process_time()
        took, got = await peer.transfer(total, chunk)
        cpu_rx, cpu_tx = cpu_seconds(peer.pid) - cpu_rx0, time.process_time() - cpu_tx0
        rss1 = peak_rss_kib(peer.pid)
        _check(got, total, chunk, verify, "raw")
    finally:
        await peer.close()
    out = {"mb_s": total / MB / took, "seconds": took, "cpu_tx": cpu_tx, "cpu_rx": cpu_rx}
    if rss0 is not None and rss1 is not None:
        out["rss_growth_mib"] = (rss1 - rss0) / 1024
        out["rss_peak_mib"] = rss1 / 1024
    out["chunks"] = got["chunks"]
    return out


async def _actr_transfer(
    client: Any, total: int, chunk: int, stream_id: str, verify: bool
) -> tuple[float, dict[str, Any]]:
    spec = json.dumps({"stream": stream_id, "verify": verify}).encode()
    assert await client.call_raw(TARGET, BEGIN, spec, timeout=30) == b"ready"
    payload = pattern(chunk)
    t0 = time.perf_counter()
    sender = await client.open_stream(TARGET, stream_id)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        await sender.send(payload if n == chunk else payload[:n])
        sent += n
    await sender.end()
    reply = await client.call_raw(TARGET, RESULT, stream_id.encode(), timeout=600)
    return time.perf_counter() - t0, json.loads(reply)


async def bench_actr(
    total: int,
    warm: int,
    chunk: int,
    verify: bool,
    round_no: int,
    profile: str | None,
    py_spy: str | None,
) -> dict[str, float]:
    import actr
    from examples.launch import start_actor, start_signaling, write_actor_config

    with tempfile.TemporaryDirectory(prefix="actr-bench-streams-") as tmp:
        work = Path(tmp)
        sig, url = start_signaling(work)
        sink = None
        try:
            config = write_actor_config(work, "sink", "bench.stream_peers:Sink", url)
            sink, _ = start_actor(work, "sink", config)
            pid = sink.popen.pid
            async with actr.connect(
                url, realm=1, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
            ) as client:
                if warm:
                    _, got = await _actr_transfer(client, warm, chunk, "warm", False)
                    _check(got, warm, chunk, False, "actr warm-up")
                spy = None
                if py_spy:
                    spy = await asyncio.create_subprocess_exec(
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--nonblocking",
                        "--format",
                        "raw",
                        "-r",
                        "200",
                        "-o",
                        f"{py_spy}.{round_no}.txt",
                        "--pid",
                        str(pid),
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                    await asyncio.sleep(1.0)  # attached
                rss0 = peak_rss_kib(pid)
                cpu_rx0, cpu_tx0 = cpu_seconds(pid), time.process_time()
                prof = cProfile.Profile() if profile else None
                if prof is not None:
                    prof.enable()
                took, got = await _actr_transfer(client, total, chunk, "bench", verify)
                if prof is not None:
                    prof.disable()
                    prof.dump_stats(f"{profile}.{round_no}")
                cpu_rx, cpu_tx = cpu_seconds(pid) - cpu_rx0, time.process_time() - cpu_tx0
                rss1 = peak_rss_kib(pid)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its output
                    await asyncio.wait_for(spy.wait(), 30)
                _check(got, total, chunk, verify, "actr")
        except BaseException:
            for name in ("sink", "signaling"):
                log = work / f"{name}.log"
                if log.exists():
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    print(f"--- {name}.log (tail)\n" + "\n".join(tail), file=sys.stderr)
            raise
        finally:
            if sink is not None:
                sink.stop()
            sig.stop()
    out = {"mb_s": total / MB / took, "seconds": took, "cpu_tx": cpu_tx, "cpu_rx": cpu_rx}
    if rss0 is not None and rss1 is not None:
        out["rss_growth_mib"] = (rss1 - rss0) / 1024
        out["rss_peak_mib"] = rss1 / 1024
    out["chunks"] = got["chunks"]
    return out


def _fmt(x: float | None, spec: str) -> str:
    return format("-", ">" + spec.split(".")[0]) if x is None else format(x, spec)


def _row(label: str, raw: dict[str, float], act: dict[str, float]) -> str:
    ratio = act["mb_s"] / raw["mb_s"] if raw and act else None
    return (
        f"{label:<8}"
        f"{_fmt(raw.get('mb_s'), '10.1f')}{_fmt(act.get('mb_s'), '10.1f')}{_fmt(ratio, '10.2f')}"
        f"{_fmt(raw.get('cpu_tx'), '9.2f')}{_fmt(raw.get('cpu_rx'), '9.2f')}"
        f"{_fmt(act.get('cpu_tx'), '9.2f')}{_fmt(act.get('cpu_rx'), '9.2f')}"
        f"{_fmt(raw.get('rss_growth_mib'), '10.1f')}{_fmt(act.get('rss_growth_mib'), '10.1f')}"
    )


def report(rounds: list[dict[str, dict[str, float]]], mb: float) -> None:
    print(f"\n{mb:g} MB per transfer; MB/s = 10^6 bytes/s, first send to receiver's answer")
    print(
        f"{'round':<8}{'raw MB/s':>10}{'actr MB/s':>10}{'actr/raw':>10}"
        f"{'raw cpu':>9}{'(rx)':>9}{'actr cpu':>9}{'(rx)':>9}"
        f"{'raw rss+':>10}{'actr rss+':>10}"
    )
    for i, r in enumerate(rounds, 1):
        print(_row(str(i), r.get("raw", {}), r.get("actr", {})))

    def med(who: str) -> dict[str, float]:
        keys = {k for r in rounds for k in r.get(who, {})}
        return {
            k: statistics.median(vals)
            for k in keys
            if (vals := [r[who][k] for r in rounds if k in r.get(who, {})])
        }

    raw_m, act_m = med("raw"), med("actr")
    line = _row("median", raw_m, act_m)
    ratios = [r["actr"]["mb_s"] / r["raw"]["mb_s"] for r in rounds if "raw" in r and "actr" in r]
    if ratios:  # the median of the per-round ratios, not the ratio of the medians
        line = line[:28] + f"{statistics.median(ratios):10.2f}" + line[38:]
    print(line)
    print(
        "cpu: CPU seconds of the sender (here) and of the receiver (rx) during the transfer;"
        " rss+: the receiver's peak RSS growth (VmHWM) over it, MiB"
    )
    both = [r for r in rounds if "raw" in r and "actr" in r]
    if both:
        # Less sensitive to a shared machine's load than MB/s: CPU per byte, raw/actr.
        tx = statistics.median(r["raw"]["cpu_tx"] / r["actr"]["cpu_tx"] for r in both)
        rx = statistics.median(r["raw"]["cpu_rx"] / r["actr"]["cpu_rx"] for r in both)
        print(f"CPU efficiency raw/actr (median): sender {tx:.2f}, receiver {rx:.2f}")
    for who, m in (("raw", raw_m), ("actr", act_m)):
        if m:
            print(
                f"{who}: {m.get('chunks', 0):.0f} chunks received,"
                f" receiver peak RSS {_fmt(m.get('rss_peak_mib'), '.1f')} MiB"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description="reliable stream throughput: actr vs raw aiortc")
    parser.add_argument("--mb", type=float, default=100, help="MB (10^6 bytes) per transfer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=65_528, help="raw message size, bytes")
    parser.add_argument("--actr-chunk", type=int, default=0, help="actr chunk (default --chunk)")
    parser.add_argument("--warm-mb", type=float, default=4, help="warm-up transfer, MB")
    parser.add_argument("--verify", action="store_true", help="sha256 on both receivers")
    parser.add_argument("--only", default="raw,actr")
    parser.add_argument("--profile-sender", metavar="FILE", help="cProfile the actr sender")
    parser.add_argument("--py-spy-receiver", metavar="FILE", help="py-spy the actr daemon")
    args = parser.parse_args()
    only = set(args.only.split(","))
    total, warm = int(args.mb * MB), int(args.warm_mb * MB)
    actr_chunk = args.actr_chunk or args.chunk
    run: Callable[[Any], Any]
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    print(f"pid {os.getpid()}; chunk raw {args.chunk} B, actr {actr_chunk} B", flush=True)
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(1, args.rounds + 1):
        got: dict[str, dict[str, float]] = {}
        # Odd rounds raw first, even rounds actr first: a drifting machine load
        # favours neither side.
        for who in ("raw", "actr") if r % 2 else ("actr", "raw"):
            if who not in only:
                continue
            if who == "raw":
                got["raw"] = run(bench_raw(total, warm, args.chunk, args.verify))
            else:
                got["actr"] = run(
                    bench_actr(
                        total,
                        warm,
                        actr_chunk,
                        args.verify,
                        r,
                        args.profile_sender,
                        args.py_spy_receiver,
                    )
                )
        rounds.append(got)
        print(
            f"round {r}: "
            + "; ".join(
                f"{who} {got[who]['mb_s']:.1f} MB/s ({got[who]['seconds']:.2f} s)"
                for who in ("raw", "actr")
                if who in got
            )
            + (
                f"; actr/raw {got['actr']['mb_s'] / got['raw']['mb_s']:.2f}"
                if len(got) == 2
                else ""
            ),
            flush=True,
        )
    report(rounds, args.mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
