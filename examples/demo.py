"""The main job in one go: a signaling server, the echo actor daemon and a call from
a third process, each a separate OS process on loopback; then everything stops.

    python examples/demo.py [text]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from examples.launch import ROOT, start_actor, start_signaling, write_actor_config


def main() -> int:
    text = " ".join(sys.argv[1:]) or "hello from another process"
    with tempfile.TemporaryDirectory(prefix="actr-demo-") as tmp:
        work = Path(tmp)
        procs = []
        try:
            sig, url = start_signaling(work)
            procs.append(sig)
            print(f"[demo] signaling server up at {url} (pid {sig.popen.pid})")
            cfg = write_actor_config(work, "echo", "examples.echo:Echo", url)
            echo, actor_id = start_actor(work, "echo", cfg)
            procs.append(echo)
            print(f"[demo] echo actor daemon up as {actor_id} (pid {echo.popen.pid})")
            cmd = [
                sys.executable,
                "-m",
                "actr",
                "call",
                "acme:echo:1.0",
                "echo.v1.Echo.Say",
                "--import",
                "examples.echo_pb2",
                "--request-type",
                "echo.v1.SayRequest",
                "--response-type",
                "echo.v1.SayReply",
                "--json",
                f'{{"text": "{text}"}}',
                "--signaling",
                url,
                "--realm",
                "1",
                "--host-address",
                "127.0.0.1",
            ]
            print("[demo] calling from a third process: actr call acme:echo:1.0 echo.v1.Echo.Say")
            # The secret goes in the environment, not on the command line (F14).
            env = {**os.environ, "ACTR_REALM_SECRET": "dev-secret"}
            done = subprocess.run(
                cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
            )
            if done.returncode != 0:
                print(f"[demo] call failed: {done.stderr.strip()}", file=sys.stderr)
                return 1
            print(f"[demo] answer: {done.stdout.strip()}")
        finally:
            for p in reversed(procs):
                code = p.stop()
                print(f"[demo] stopped {p.name} (exit {code})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
