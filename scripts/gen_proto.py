"""Generate the Python protobuf modules in actr/protocol/ from proto/.

    python scripts/gen_proto.py          # write actr/protocol/*_pb2.py(i)
    python scripts/gen_proto.py --check  # exit 1 if the committed files are stale

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
OUT_PACKAGE = Path("actr") / "protocol"


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
    return sorted((out_root / OUT_PACKAGE).glob("*_pb2.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        produced = generate(Path(tmp))
        committed_dir = ROOT / OUT_PACKAGE
        stale = []
        for path in produced:
            target = committed_dir / path.name
            if opts.check:
                if not target.exists() or not filecmp.cmp(path, target, shallow=False):
                    stale.append(path.name)
            else:
                target.write_bytes(path.read_bytes())
        if opts.check:
            extra = {p.name for p in committed_dir.glob("*_pb2.py*")} - {p.name for p in produced}
            stale.extend(sorted(extra))
            if stale:
                print("stale generated protobuf modules: " + ", ".join(stale), file=sys.stderr)
                print("run: python scripts/gen_proto.py", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
