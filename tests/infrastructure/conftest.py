from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from app import build_app
from aws_cdk.assertions import Template


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, dict[str, Any], Path]:
    """Synthesize once per session (the first synthesis costs seconds)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(outdir=str(outdir))
    app.synth()
    body = json.loads((Path(outdir) / f"{stack.stack_name}.template.json").read_text())
    return Template.from_json(body), body, Path(outdir)


@pytest.fixture(scope="session")
def template(synthesized: tuple[Template, dict[str, Any], Path]) -> Template:
    return synthesized[0]


@pytest.fixture(scope="session")
def body(synthesized: tuple[Template, dict[str, Any], Path]) -> dict[str, Any]:
    return synthesized[1]


@pytest.fixture(scope="session")
def cdk_out(synthesized: tuple[Template, dict[str, Any], Path]) -> Path:
    """The cloud assembly's folder: the template and the bundled assets."""
    return synthesized[2]
