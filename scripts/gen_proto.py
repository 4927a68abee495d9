"""Generate the Python protobuf modules from proto/.

    python scripts/gen_proto.py          # write the *_pb2.py(i) files
    python scripts/gen_proto.py --check  # exit 1 if the committed files are stale

proto/<path>.proto becomes <path>_pb2.py at the repo root, so
proto/actr/protocol/actr.proto is imported as actr.protocol.actr_pb2 and
proto/examples/echo.proto as examples.echo_pb2.

Uses the protoc bundled with grpcio-tools (pinned in pyproject.toml), so the
output is the same on every machine.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"


def generate(out_root: Path) -> list[Path]:
    sources = sorted(PROTO_ROOT.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        *(str(p) for p in sources),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p.relative_to(out_root) for p in out_root.rglob("*_pb2.py*"))


def committed() -> set[Path]:
    out = set()
    for proto in PROTO_ROOT.rglob("*.proto"):
        folder = proto.parent.relative_to(PROTO_ROOT)
        out.update(p.relative_to(ROOT) for p in (ROOT / folder).glob("*_pb2.py*"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        produced = generate(Path(tmp))
        stale = []
        for rel in produced:
            source, target = Path(tmp) / rel, ROOT / rel
            if opts.check:
                if not target.exists() or not filecmp.cmp(source, target, shallow=False):
                    stale.append(str(rel))
            else:
                target.write_bytes(source.read_bytes())
        if opts.check:
            stale.extend(str(p) for p in sorted(committed() - set(produced)))
            if stale:
                print("stale generated protobuf modules: " + ", ".join(stale), file=sys.stderr)
                print("run: python scripts/gen_proto.py", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
