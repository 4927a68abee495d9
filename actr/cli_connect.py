"""How the ``actr`` commands that talk to actors reach them: the connection options
(--config, --signaling, --realm, the realm secret's sources, --caller-type,
--host-address) and the client node they make.

Light on purpose: ``actr --help`` and argument errors load none of the runtime;
``client_from_args`` loads it when a command needs it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actr.node import Node

__all__ = ["CLIENT_TYPE", "SECRET_ENV", "UsageError", "add_connection_args", "client_from_args"]

SECRET_ENV = "ACTR_REALM_SECRET"
# actr.node.CLIENT_TYPE (a test keeps them equal): importing actr.node loads aiortc.
CLIENT_TYPE = "actr:client:1.0"


class UsageError(Exception):
    """Bad arguments or input: exit 2, nothing was sent."""


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="take signaling settings from this actr.toml")
    p.add_argument("--signaling", help="signaling server URL")
    p.add_argument("--realm", type=int)
    p.add_argument(
        "--realm-secret-file",
        help=f"read the realm secret from this file (else --config, else ${SECRET_ENV})",
    )
    # Refused with a message (F14): kept only to say why and what to use instead.
    p.add_argument("--realm-secret", help=argparse.SUPPRESS)
    p.add_argument(
        "--caller-type",
        help=f"register as this actor type (default {CLIENT_TYPE}), e.g. one that an "
        "actor's ACL or [admin] stats_from names",
    )
    p.add_argument(
        "--host-address",
        action="append",
        help="ICE host address to use (repeatable), e.g. 127.0.0.1",
    )


def client_from_args(args: argparse.Namespace) -> Node:
    """A client node from --config / --signaling / --realm / the realm secret's sources."""
    from actr import config as config_mod
    from actr.client import connect
    from actr.identity import IdentityError, parse_type

    if args.realm_secret is not None:
        # F14: an argument is in the process list (ps, /proc) for every local user.
        raise UsageError(
            "--realm-secret is not accepted: a secret on the command line is visible to "
            f"every user of this machine; use {SECRET_ENV}=..., --realm-secret-file FILE "
            "or --config actr.toml"
        )
    urls: list[str] = [args.signaling] if args.signaling else []
    realm, secret, hosts = args.realm, "", None
    if args.realm_secret_file:
        secret = config_mod.read_secret_file(Path(args.realm_secret_file), "--realm-secret-file")
    if args.config:
        cfg = config_mod.load(args.config)
        urls = urls or cfg.signaling.all_urls()
        realm = realm if realm is not None else cfg.signaling.realm
        secret = secret or cfg.signaling.realm_secret
        hosts = cfg.transport.host_addresses
    secret = secret or os.environ.get(SECRET_ENV, "")
    if not secret:
        raise UsageError(
            f"no realm secret: use --realm-secret-file FILE, --config actr.toml or {SECRET_ENV}"
        )
    if args.host_address:
        hosts = args.host_address
    if args.caller_type:
        try:
            parse_type(args.caller_type)
        except IdentityError as e:
            raise UsageError(f"--caller-type: {e}") from e
    return connect(
        urls or ["http://127.0.0.1:8081"],
        realm=realm if realm is not None else 1,
        realm_secret=secret,
        actr_type=args.caller_type or CLIENT_TYPE,
        host_addresses=hosts,
    )
