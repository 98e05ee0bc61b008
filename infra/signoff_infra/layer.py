"""The core layer: what the functions import from the `signoff` package, its dependencies and the
policy file, built with pip on the synthesizing machine (no Docker). Dependencies are cached by
their requirements' hash, so a second synthesis only copies files.

The package goes in by an explicit list (`LAYER_PARTS`): the tools (CLI, client, queries, report)
and the in-memory fakes never run in Lambda and are left out. tests/infrastructure/test_layer.py
checks the list against what every handler imports, function-level imports included."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core"
REQUIREMENTS = CORE / "requirements.txt"
CACHE = ROOT / ".cache" / "layer-deps"
RUNTIME = lambda_.Runtime.PYTHON_3_14
PYTHON_VERSION = "3.14"
PLATFORM = "manylinux2014_x86_64"
POLICY_IN_LAYER = "/opt/signoff.yaml"  # layers unpack under /opt
ROUTING_IN_LAYER = "/opt/routing.yaml"
SHADOW_POLICY_IN_LAYER = "/opt/signoff.shadow.yaml"  # only when the stack carries a shadow policy
# The helpdesk's config and its knowledge folder (helpdesk.yaml's `knowledge.folder`, relative to it).
HELPDESK_PATH = ROOT / "helpdesk.yaml"
KNOWLEDGE_DIR = ROOT / "knowledge"
HELPDESK_IN_LAYER = "/opt/helpdesk.yaml"
# The parts of `signoff` the functions run (relative to the package); everything else stays out.
LAYER_PARTS = (
    "__init__.py",
    "py.typed",
    "composition.py",
    "ports.py",
    "settings.py",
    "observability.py",
    "domain",
    "audit",
    "usecases",
    "adapters",
    "api",
    "surfaces",
)
PACKAGE_PARTS = [CORE / "signoff" / part for part in LAYER_PARTS]


def _tree_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            # A file from outside the repository (a test's helpdesk.yaml) counts by its name.
            digest.update(str(file.relative_to(ROOT) if file.is_relative_to(ROOT) else file.name).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _dependencies() -> Path:
    """pip-install the layer's requirements for the Lambda platform, once per requirements hash."""
    key = hashlib.sha256(f"{PLATFORM}|{PYTHON_VERSION}|".encode() + REQUIREMENTS.read_bytes()).hexdigest()[:16]
    target = CACHE / key
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--target", str(target), "--platform", PLATFORM, "--implementation", "cp",
                "--python-version", PYTHON_VERSION, "--only-binary=:all:", "-r", str(REQUIREMENTS),
            ],
            check=True,
        )  # fmt: skip
        (target / ".complete").touch()
    return target


@jsii.implements(cdk.ILocalBundling)
class _LocalBundler:
    def __init__(
        self,
        policy_path: Path,
        routing_path: Path,
        helpdesk_path: Path = HELPDESK_PATH,
        shadow_policy_path: Path | None = None,
    ) -> None:
        self.policy_path = policy_path
        self.routing_path = routing_path
        self.helpdesk_path = helpdesk_path
        self.shadow_policy_path = shadow_policy_path

    def try_bundle(self, output_dir: str, options: Any) -> bool:  # noqa: ARG002 (jsii passes the options positionally)
        python = Path(output_dir) / "python"
        shutil.copytree(_dependencies(), python, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))
        for part in PACKAGE_PARTS:
            target = python / "signoff" / part.name
            if part.is_dir():
                shutil.copytree(part, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(part, target)
        shutil.copyfile(self.policy_path, Path(output_dir) / "signoff.yaml")
        shutil.copyfile(self.routing_path, Path(output_dir) / "routing.yaml")
        if self.shadow_policy_path is not None:
            shutil.copyfile(self.shadow_policy_path, Path(output_dir) / Path(SHADOW_POLICY_IN_LAYER).name)
        shutil.copyfile(self.helpdesk_path, Path(output_dir) / "helpdesk.yaml")
        shutil.copytree(KNOWLEDGE_DIR, Path(output_dir) / KNOWLEDGE_DIR.name, dirs_exist_ok=True)
        return True


class CoreLayer(Construct):
    """The layer every Signoff function runs on."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy_path: Path,
        routing_path: Path,
        helpdesk_path: Path = HELPDESK_PATH,
        shadow_policy_path: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            description="signoff core package, its dependencies, the policy and the routing",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            code=lambda_.Code.from_asset(
                str(CORE),
                # The asset changes when the package, its requirements or the policy change.
                asset_hash_type=cdk.AssetHashType.CUSTOM,
                asset_hash=_tree_digest(
                    [
                        *PACKAGE_PARTS,
                        REQUIREMENTS,
                        policy_path,
                        routing_path,
                        helpdesk_path,
                        KNOWLEDGE_DIR,
                        *([shadow_policy_path] if shadow_policy_path else []),
                    ]
                ),
                bundling=cdk.BundlingOptions(
                    image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                    local=cast(
                        cdk.ILocalBundling,
                        _LocalBundler(policy_path, routing_path, helpdesk_path, shadow_policy_path),
                    ),
                ),
            ),
        )
