"""CDK app: `python infra/app.py` (or `cdk synth`) synthesizes Signoff offline.

The policy file is validated first: an invalid policy stops synthesis with `path: reason` lines,
so a broken policy never deploys. Set SIGNOFF_POLICY to use another file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from signoff.errors import PolicyError
from signoff.policy import load_policy
from signoff_infra.stack import SignoffStack

ROOT = Path(__file__).resolve().parents[1]
STACK_NAME = "Signoff"


def build_app(outdir: str | None = None, policy_path: Path | None = None) -> tuple[cdk.App, SignoffStack]:
    path = policy_path or Path(os.environ.get("SIGNOFF_POLICY", ROOT / "signoff.yaml"))
    policy = load_policy(path)  # raises PolicyError: synthesis stops here
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"))
    stack = SignoffStack(app, STACK_NAME, policy=policy, policy_path=path, description="Signoff checkpoint service")
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
