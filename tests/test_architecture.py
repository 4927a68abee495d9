"""The layout's rules, checked on the source (ARCHITECTURE.md, STYLE.md):

- the sans-IO cores import nothing that does I/O (asyncio, aiortc, aioice,
  aiosqlite, aiohttp, redis), not even through another module of ours;
- no import cycle among the modules of actr/ and signaling/;
- every module is under ~400 lines, or its docstring says why not.

Imports are read from the syntax tree: module-level ones (those under
``if TYPE_CHECKING:`` are annotations, not imports at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actr", "signaling")
IO_MODULES = frozenset({"asyncio", "aiortc", "aioice", "aiosqlite", "aiohttp", "redis", "uvloop"})
# Time and bytes in, actions out (STYLE.md): these never touch I/O.
CORES = (
    "actr.framing",
    "actr.inbound",
    "actr.pending",
    "actr.stream_core",
    "actr.stream_credit",
    "actr.stream_hold",
    "actr.stream_state",
    "actr.stream_latency",
    "actr.mailbox_rules",
    "actr.mailbox_ops",
    "actr.mailbox_queue",
    "actr.signaling_session",
    "signaling.dispatcher",
)
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name.endswith("_pb2.py"):
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If) and not _is_type_checking(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)

    visit(tree.body)
    return found


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(modules of ours, top-level names of others) that ``name`` imports at load."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    ours: set[str] = set()
    theirs: set[str] = set()
    for node in _top_level_imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = name.rsplit(".", node.level)[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule when there is one.
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module
                for a in node.names
            ]
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                if target in MODULES and target != name:
                    ours.add(target)
            else:
                theirs.add(target.split(".")[0])
    return ours, theirs


GRAPH = {name: _imports(name) for name in MODULES}


@pytest.mark.parametrize("core", CORES)
def test_sans_io_cores_import_no_io(core: str) -> None:
    if core not in MODULES:
        pytest.skip(f"{core} is not a module here")
    seen: set[str] = set()
    todo = [core]
    reached_io: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        ours, theirs = GRAPH[name]
        for bad in theirs & IO_MODULES:
            reached_io[bad] = name
        todo.extend(ours)
    assert not reached_io, f"{core} reaches I/O modules (module: importer): {reached_io}"


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(GRAPH[name][0]):
            # A package's own __init__ is loaded before its modules: not an edge back.
            if name.startswith(dep + "."):
                continue
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small_or_say_why(name: str) -> None:
    path = MODULES[name]
    lines = len(path.read_text().splitlines())
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "lines" in doc.lower(), (
        f"{path.relative_to(ROOT)} has {lines} lines: split it by job, or say in its "
        "docstring why it is one piece (mention its length)"
    )
