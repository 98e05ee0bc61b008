"""The core layer as synthesized: only what the functions run is in it (no CLI, report, queries or
fakes), and every handler imports from the layer alone, lazily imported modules included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.importgraph import ROOT, closure, graph, imports_of_file

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]

HANDLERS = sorted((ROOT / "functions").glob("*/handler.py"))
NEVER_IN_LAYER = ("signoff/tools", "signoff/testing", "cli.py", "report.py", "client.py", "auditlog.py",
                  "queries.py", "memory.py", "duckdb", "jinja2", "signoff/agents")  # fmt: skip


@pytest.fixture(scope="module")
def layer(body: dict[str, Any], cdk_out: Path) -> Path:
    # The layer's S3 key is its asset's hash; the assembly keeps the bundled folder as asset.<hash>.
    (key,) = [
        r["Properties"]["Content"]["S3Key"]
        for r in body["Resources"].values()
        if r["Type"] == "AWS::Lambda::LayerVersion"
    ]
    folder = cdk_out / f"asset.{key.removesuffix('.zip')}" / "python"
    assert folder.is_dir(), f"{folder} is not in the cloud assembly"
    return folder


def _shipped(layer: Path) -> set[str]:
    return {
        ".".join(p.relative_to(layer).with_suffix("").parts).removesuffix(".__init__")
        for p in (layer / "signoff").rglob("*.py")
    }


def test_the_layer_holds_no_cli_report_query_or_fake_module(layer: Path) -> None:
    files = [str(p.relative_to(layer)) for p in layer.rglob("*") if p.is_file()]
    assert any(f.startswith("signoff/composition.py") for f in files)
    assert [f for f in files if any(part in f for part in NEVER_IN_LAYER) and "signoff" in f] == []
    assert not any(f.startswith(("duckdb/", "jinja2/")) for f in files)


def test_everything_a_handler_may_import_is_in_the_layer(layer: Path) -> None:
    # Function-level imports count: the composition root builds the chat surfaces lazily.
    needed = closure(set().union(*(imports_of_file(h) for h in HANDLERS)), graph())
    assert "signoff.surfaces.teams.app" in needed and "signoff.adapters.s3_archive" in needed
    assert sorted(needed - _shipped(layer)) == []


# Run in a fresh interpreter without site processing (so the editable install of the source tree
# is not on the path) and with the layer first: the handler, then every signoff module it may import
# lazily, must load from the layer. The layer's third-party wheels are built for Lambda's Python, so
# they come from this interpreter's site-packages instead.
_PROBE = """
import importlib, json, sys
sys.path[:0] = [{task_root!r}, {layer!r}, {site!r}]
import handler
for name in {modules!r}:
    importlib.import_module(name)
outside = sorted(n for n, m in sys.modules.items()
                 if n.split(".")[0] == "signoff" and not (getattr(m, "__file__", "") or "").startswith({layer!r}))
print(json.dumps(outside))
"""


@pytest.mark.parametrize("handler", HANDLERS, ids=[h.parent.name for h in HANDLERS])
def test_each_handler_imports_from_the_layer_alone(layer: Path, handler: Path, tmp_path: Path) -> None:
    # Only the layer's signoff: its third-party wheels are for another Python (see _PROBE).
    signoff_only = tmp_path / "layer"
    signoff_only.mkdir()
    (signoff_only / "signoff").symlink_to(layer / "signoff")
    modules = sorted(closure(imports_of_file(handler), graph()))
    probe = _PROBE.format(
        task_root=str(handler.parent),
        layer=str(signoff_only),
        site=sysconfig.get_paths()["purelib"],
        modules=modules,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["LAMBDA_TASK_ROOT"] = str(handler.parent)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == []
