"""The package's shape, checked from its source: no import cycles, each concern depends only on
the ones beneath it, the surfaces never borrow from each other, and nothing the Lambda functions
run depends on the tools or the fakes."""

from __future__ import annotations

import pytest

from tests.importgraph import ROOT, closure, cycles, graph, imports_of_file

pytestmark = pytest.mark.unit

EDGES = graph()
HANDLERS = sorted((ROOT / "functions").glob("*/handler.py"))


def _concern(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3]) if parts[1] == "surfaces" and len(parts) > 2 else ".".join(parts[:2])


def _offending(source_prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in EDGES.items()
        if module == source_prefix or module.startswith(source_prefix + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    )


def test_the_graph_sees_the_package() -> None:
    # A check over an empty graph would pass whatever the code does.
    assert len(EDGES) > 40
    assert "signoff.usecases.intake" in EDGES["signoff.api.checkpoints"]
    assert "signoff.surfaces.slack.app" in EDGES["signoff.composition"]  # a function-level import counts


def test_there_is_no_import_cycle_between_modules() -> None:
    assert cycles(EDGES) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("concern", "forbidden"),
    [
        # The domain is pure: no AWS, no chat platform, no use case, no I/O.
        ("signoff.domain", ("signoff.audit", "signoff.usecases", "signoff.adapters", "signoff.api",
                            "signoff.surfaces", "signoff.composition", "signoff.tools", "signoff.testing")),
        ("signoff.audit", ("signoff.usecases", "signoff.api", "signoff.surfaces", "signoff.composition",
                           "signoff.tools", "signoff.testing")),
        ("signoff.usecases", ("signoff.adapters", "signoff.api", "signoff.surfaces", "signoff.composition",
                              "signoff.tools", "signoff.testing")),
        ("signoff.ports", ("signoff.usecases", "signoff.adapters", "signoff.surfaces", "signoff.composition")),
        ("signoff.adapters", ("signoff.api", "signoff.surfaces", "signoff.composition", "signoff.tools",
                              "signoff.testing")),
        ("signoff.api", ("signoff.composition", "signoff.surfaces", "signoff.adapters", "signoff.tools",
                         "signoff.testing")),
        # Each chat surface translates its platform only: never the other surface's shapes.
        ("signoff.surfaces.slack", ("signoff.surfaces.teams", "signoff.composition", "signoff.tools",
                                    "signoff.testing")),
        ("signoff.surfaces.teams", ("signoff.surfaces.slack", "signoff.composition", "signoff.tools",
                                    "signoff.testing")),
    ],
)  # fmt: skip
def test_each_concern_depends_only_on_what_lies_beneath_it(concern: str, forbidden: tuple[str, ...]) -> None:
    assert _offending(concern, forbidden) == []


def test_nothing_a_function_runs_reaches_the_tools_or_the_fakes() -> None:
    reached = closure(set().union(*(imports_of_file(h) for h in HANDLERS)), EDGES)
    assert "signoff.composition" in reached and "signoff.surfaces.teams.app" in reached
    assert sorted(m for m in reached if m.startswith(("signoff.tools", "signoff.testing", "signoff.agents"))) == []


def test_no_module_outside_the_composition_root_caches_a_built_dependency() -> None:
    # functools.cache on a factory is a second, unresettable composition root.
    cached = []
    for path in sorted((ROOT / "layers" / "core" / "signoff").rglob("*.py")):
        if path.name == "composition.py" or "tools" in path.parts or "testing" in path.parts:
            continue
        text = path.read_text()
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip() in ("@cache", "@functools.cache", "@lru_cache", "@functools.lru_cache()"):
                following = text.splitlines()[line_no].strip()
                cached.append(f"{path.relative_to(ROOT)}:{line_no + 1}: {following}")
    # Pure values computed once are fine (the OpenAPI document, a parsed policy by path); factories are not.
    assert [c for c in cached if "openapi_json" not in c] == []
