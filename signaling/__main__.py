"""``actr-signaling [--config FILE] [--host H] [--port P]`` / ``python -m signaling``;
``actr-signaling --check FILE`` lists every problem of a config and exits (2, or 0).

Once serving, prints exactly one line to stdout, ``signaling listening on
http://HOST:PORT`` (the bound port, also when 0 was asked for); logs go to
stderr. Exit codes: 0 after SIGINT/SIGTERM, 1 when the address cannot be
bound or the configured Redis cannot be reached, 2 for a bad command line or
configuration (a weak realm secret on a non-loopback address, a signing key file
open to group or others: F14; without Redis, a serial file another running server
holds: F1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from actr.realm_secret import secret_weakness
from signaling import config_check
from signaling.cluster import ClusterUnavailable
from signaling.config import DEV_REALM_SECRET, Config, ConfigError, check_exposure, load_config
from signaling.runner import listening_line, start_server

log = logging.getLogger(__name__)

EXIT_BIND = 1
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="actr-signaling",
        description="actr signaling server and identity service (PROTOCOL.md section 4)",
    )
    p.add_argument("--config", type=Path, help="TOML config file (see signaling/example.toml)")
    p.add_argument("--host", help="address to bind, overrides the config")
    p.add_argument("--port", type=int, help="port to bind (0: any free port), overrides the config")
    p.add_argument(
        "--check",
        type=Path,
        metavar="CONFIG",
        help="list every problem of CONFIG (exit 2), or print OK (exit 0); serves nothing",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default INFO)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    logging.basicConfig(
        level=opts.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if opts.check is not None:
        return config_check.main(opts.check, host=opts.host, port=opts.port)
    try:
        config = load_config(opts.config).with_overrides(host=opts.host, port=opts.port)
        check_exposure(config)
    except ConfigError as e:
        print(f"actr-signaling: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if config.uses_dev_secret:
        log.warning("dev_realm_secret_in_use hint=configure_[realms]_before_exposing_this_server")
    for realm_id, secret in sorted(config.realms.items()):
        why = secret_weakness(secret)
        if why is not None and secret != DEV_REALM_SECRET:
            # Allowed here only because the server listens on loopback (check_exposure).
            log.warning("weak_realm_secret realm=%d why=%r loopback_only=true", realm_id, why)
    try:
        return _loop_runner()(_serve(config))
    except ConfigError as e:
        print(f"actr-signaling: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except ClusterUnavailable as e:
        print(f"actr-signaling: {e}", file=sys.stderr)
        return EXIT_BIND
    except OSError as e:
        print(f"actr-signaling: cannot listen on {config.host}:{config.port}: {e}", file=sys.stderr)
        return EXIT_BIND
    except KeyboardInterrupt:
        return 0


def _loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    # uvloop where it is installed (a dependency off Windows): cheaper per socket.
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    return run


async def _serve(config: Config) -> int:
    server = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows event loops; Ctrl-C still raises KeyboardInterrupt there.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print(listening_line(server), flush=True)
    try:
        await stop.wait()
    finally:
        log.info("shutting_down")
        await server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
