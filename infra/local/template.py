"""Reads the synthesized CloudFormation template and resolves its intrinsics (Ref, Fn::GetAtt,
Fn::Join, Fn::Sub) against the physical names and ARNs of what the local stack created."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "Signoff",
    "AWS::NoValue": None,
}
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(Exception):
    pass


@dataclass
class Template:
    """One stack's template and the folder its assets were staged in."""

    path: Path
    body: dict[str, Any]
    assets: dict[str, Path]  # S3 object key (e.g. "<hash>.zip") -> staged folder
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)  # (logical id, attribute) -> value

    @classmethod
    def load(cls, outdir: Path, stack: str = "Signoff") -> Template:
        path = outdir / f"{stack}.template.json"
        if not path.exists():
            raise TemplateError(f"{path} not found: synthesize first (make synth)")
        assets: dict[str, Path] = {}
        manifest = json.loads((outdir / f"{stack}.assets.json").read_text())
        for asset in manifest.get("files", {}).values():
            source = outdir / asset["source"]["path"]
            for dest in asset["destinations"].values():
                assets[dest["objectKey"]] = source
        return cls(path=path, body=json.loads(path.read_text()), assets=assets)

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.body["Resources"].items() if r["Type"] == type_}

    def props(self, logical_id: str) -> dict[str, Any]:
        return dict(self.body["Resources"][logical_id].get("Properties", {}))

    def asset_dir(self, code: dict[str, Any]) -> Path:
        """The staged folder of a Lambda function's or layer's S3 code location."""
        key = self.resolve(code["S3Key"])
        try:
            return self.assets[key]
        except KeyError:
            raise TemplateError(f"asset {key} is not in the assets manifest") from None

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions recursively."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._attr(name, attr)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key.startswith("Fn::"):
                raise TemplateError(f"intrinsic {key} is not supported by the local stack")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"Ref {name}: not created in the local stack")

    def _attr(self, name: str, attr: str) -> str:
        try:
            return self.attrs[(name, attr)]
        except KeyError:
            raise TemplateError(f"Fn::GetAtt {name}.{attr}: not created in the local stack") from None

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(variables[token])
            if "." in token:
                name, attr = token.split(".", 1)
                return self._attr(name, attr)
            return str(self._ref(token))

        return _SUB.sub(replace, text)
