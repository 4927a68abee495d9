"""Wall time of ``actr call`` from a shell to a running echo actor daemon.

    python bench/cli_call.py [--runs 15] [--before DIR]

Starts a signaling server and the echo daemon (examples.launch), then runs
``python -m actr call acme:echo:1.0 echo.v1.Echo.Say '{"text": "hi"}'`` as a new
process ``--runs`` times and prints the median, the fastest and the slowest wall
time (process start to exit: interpreter, imports, registration, WebRTC set-up, the
call, the unregister). ``--before DIR``: also time the CLI of another checkout (an
older commit, e.g. ``git worktree add --detach DIR <commit>``) with the arguments it
takes (``--import examples.echo_pb2 --request-type ... --response-type ...``),
interleaved with ours run by run, so both see the same load on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.launch import start_actor, start_signaling, write_actor_config  # noqa: E402

TYPED = [
    "--import",
    "examples.echo_pb2",
    "--request-type",
    "echo.v1.SayRequest",
    "--response-type",
    "echo.v1.SayReply",
    "--json",
    '{"text": "hi"}',
]


def timed(cwd: Path, args: list[str]) -> float:
    env = {**os.environ, "ACTR_REALM_SECRET": "dev-secret"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "actr", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    took = time.perf_counter() - start
    if done.returncode != 0 or '"hi"' not in done.stdout:
        raise SystemExit(f"call failed in {cwd}: {done.stderr.strip()}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before", type=Path, help="another checkout's CLI to time alongside")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        signaling, url = start_signaling(work)
        cfg = write_actor_config(work, "echo", "examples.echo:Echo", url)
        echo, _ = start_actor(work, "echo", cfg)
        try:
            conn = ["--signaling", url, "--host-address", "127.0.0.1"]
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(opts.runs):
                if opts.before is not None:
                    args = ["call", "acme:echo:1.0", "echo.v1.Echo.Say", *TYPED, *conn]
                    theirs.append(timed(opts.before, args))
                args = ["call", "acme:echo:1.0", "echo.v1.Echo.Say", '{"text": "hi"}', *conn]
                ours.append(timed(ROOT, args))
            for name, times in (("this checkout", ours), (str(opts.before), theirs)):
                if times:
                    print(
                        f"{name}: median {statistics.median(times):.3f} s, "
                        f"fastest {min(times):.3f} s, slowest {max(times):.3f} s "
                        f"({len(times)} runs)"
                    )
        finally:
            echo.stop()
            signaling.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
