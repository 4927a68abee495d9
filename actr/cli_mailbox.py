"""``actr mailbox stats`` and ``actr dlq list|show|replay|purge``: a daemon's mailbox from
a shell, while it runs or after it stopped (MBX-4's dead letters, MBX-5's counts)."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from actr import config as config_mod
from actr.mailbox import DeadLetter, Mailbox
from actr.protocol.actr_pb2 import RpcEnvelope

__all__ = ["UsageError", "mailbox_command", "positive_int"]


class UsageError(Exception):
    pass


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _mailbox_path(target: str) -> Path:
    """A data dir, a mailbox.db file, or an actr.toml naming the data dir."""
    path = Path(target)
    if path.suffix == ".toml":
        cfg = config_mod.load(path)
        if cfg.data_dir is None:
            raise UsageError(f"{path} names no [actor] data_dir")
        path = cfg.data_dir
    if path.is_dir():
        path = path / "mailbox.db"
    if not path.is_file():
        raise UsageError(f"no mailbox at {path}")
    return path


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _route_of(envelope: bytes) -> str:
    env = RpcEnvelope()
    try:
        env.ParseFromString(envelope)
    except DecodeError:
        return "<undecodable>"
    return env.route_key


def _dead_letter_json(d: DeadLetter, *, envelope: bool) -> dict[str, Any]:
    r = d.record
    out: dict[str, Any] = {
        "seq": r.seq,
        "caller": r.caller,
        "request_id": r.request_id,
        "route_key": _route_of(r.envelope),
        "priority": r.priority,
        "payload_type": r.payload_type,
        "attempts": r.attempts,
        "accepted_at": _when(r.accepted_at),
        "failed_at": _when(d.failed_at),
        "reason": d.reason,
    }
    if envelope:
        out["envelope_b64"] = base64.b64encode(r.envelope).decode()
    return out


async def mailbox_command(args: argparse.Namespace) -> int:
    # recover=False: the daemon may be running; only it moves rows in flight.
    box = await Mailbox.open(_mailbox_path(args.target), recover=False)
    try:
        if args.command == "mailbox":
            st = await box.stats()
            if args.json:
                print(json.dumps(asdict(st)))
            else:
                age = "-" if st.oldest_age is None else f"{st.oldest_age:.1f}s"
                print(
                    f"queued      {st.queued} (HIGH {st.queued_by_priority.get(0, 0)},"
                    f" NORMAL {st.queued_by_priority.get(1, 0)})"
                )
                print(f"in flight   {st.in_flight}")
                print(f"oldest      {age}")
                print(f"dead        {st.dead_letters}")
                print(f"answers     {st.answers_kept} kept for duplicates")
            return 0
        if args.action == "list":
            letters = await box.dead_letters(args.limit)
            if args.json:
                for d in letters:
                    print(json.dumps(_dead_letter_json(d, envelope=False)))
                return 0
            if not letters:
                print("no dead letters", file=sys.stderr)
                return 0
            print("seq\tfailed_at\tcaller\trequest_id\troute_key\tattempts\treason")
            for d in letters:
                r = d.record
                print(
                    f"{r.seq}\t{_when(d.failed_at)}\t{r.caller}\t{r.request_id}\t"
                    f"{_route_of(r.envelope)}\t{r.attempts}\t{d.reason}"
                )
            return 0
        if args.action == "show":
            if not args.seq:
                raise UsageError("dlq show needs sequence numbers")
            found = await box.dead_letters(len(args.seq), seqs=args.seq)
            if not found:
                raise UsageError("no such dead letter")
            for d in found:
                print(json.dumps(_dead_letter_json(d, envelope=True), indent=2))
            return 0
        if not args.seq and not args.all:
            raise UsageError(f"dlq {args.action} needs sequence numbers or --all")
        seqs = None if args.all else args.seq
        if args.action == "replay":
            print(f"replayed {await box.replay(seqs)}")
        else:
            print(f"purged {await box.purge(seqs)}")
        return 0
    finally:
        await box.close()
