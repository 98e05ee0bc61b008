"""The `signoff` package's import graph, read from the source (not by importing it): every import of
a `signoff` module, at module level or inside a function (the composition root imports lazily),
except those under `if TYPE_CHECKING:`, which never run."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layers" / "core" / "signoff"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, known: Iterable[str]) -> set[str]:
    """The `signoff` modules a source imports (a `from pkg import name` of a submodule counts as
    importing that submodule)."""
    known = set(known)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "signoff")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "signoff":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known}


def graph() -> dict[str, set[str]]:
    """module -> the `signoff` modules it imports (self-imports and parents dropped: importing
    `signoff.audit.events` runs `signoff.audit/__init__` too, which never imports back)."""
    found = modules()
    return {name: _imported(ast.parse(path.read_text()), found) - {name} for name, path in found.items()}


def imports_of_file(path: Path) -> set[str]:
    """The `signoff` modules a file outside the package (a handler) imports."""
    return _imported(ast.parse(path.read_text()), modules())


def closure(start: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    """Every module reachable from `start`, with the packages that contain them."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(edges.get(name, ()))
        parent = name.rsplit(".", 1)[0]
        if "." in name and parent not in seen:
            todo.append(parent)
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found
