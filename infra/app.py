"""CDK app: `python infra/app.py` (or `cdk synth`) synthesizes Signoff offline.

The policy and routing files are validated first: an invalid one stops synthesis with
`path: reason` lines, so a broken policy never deploys. SIGNOFF_POLICY / SIGNOFF_ROUTING /
SIGNOFF_HELPDESK pick other files; SIGNOFF_SHADOW_POLICY names a candidate policy evaluated beside
the active one (its would-be gate is recorded on every checkpoint; it never acts)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from signoff.domain.errors import PolicyError
from signoff.domain.policy import load_policy
from signoff.domain.routing import load_routing
from signoff_infra.stack import SignoffStack

ROOT = Path(__file__).resolve().parents[1]
STACK_NAME = "Signoff"


def build_app(
    outdir: str | None = None,
    policy_path: Path | None = None,
    routing_path: Path | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[cdk.App, SignoffStack]:
    path = (policy_path or Path(os.environ.get("SIGNOFF_POLICY", ROOT / "signoff.yaml"))).resolve()
    routing = (routing_path or Path(os.environ.get("SIGNOFF_ROUTING", ROOT / "routing.yaml"))).resolve()
    helpdesk = Path(os.environ.get("SIGNOFF_HELPDESK", ROOT / "helpdesk.yaml")).resolve()
    policy = load_policy(path)  # raises PolicyError: synthesis stops here
    load_routing(routing)  # so does an invalid routing file
    shadow_path = (
        Path(os.environ["SIGNOFF_SHADOW_POLICY"]).resolve() if os.environ.get("SIGNOFF_SHADOW_POLICY") else None
    )
    shadow = load_policy(shadow_path) if shadow_path else None  # an invalid shadow stops synthesis too
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"), context=context)
    example = os.environ.get("SIGNOFF_EXAMPLE", "") == "1" or bool(app.node.try_get_context("example"))
    teams = os.environ.get("SIGNOFF_TEAMS", "") == "1" or bool(app.node.try_get_context("teams"))
    stack = SignoffStack(
        app,
        STACK_NAME,
        policy=policy,
        policy_path=path,
        routing_path=routing,
        helpdesk_path=helpdesk,
        shadow_policy=shadow,
        shadow_policy_path=shadow_path,
        example=example,
        teams=teams,
        description="Signoff checkpoint service",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> int:
    try:
        app, _ = build_app()
    except PolicyError as exc:
        print(f"synthesis refused: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
