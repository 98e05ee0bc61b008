"""The policy file: score weights, penalties, risk rules, thresholds, the confidence x risk matrix
and the gate profiles. Validated with pydantic; every error names its path in the file."""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from signoff.domain.calibration import Calibration
from signoff.domain.errors import PolicyError


class RiskClass(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RISK_RANK[self]


class Band(StrEnum):
    """Confidence band: high = auto-execute territory, low = manual review required."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RISK_RANK[RiskClass(self.value)]

    @property
    def label(self) -> str:
        return {"high": "Auto-Execute", "medium": "Review Recommended", "low": "Manual Review Required"}[self.value]


class GateKind(StrEnum):
    AUTO = "auto"
    SOFT = "soft"
    HARD = "hard"

    @property
    def strictness(self) -> int:
        return {"auto": 0, "soft": 1, "hard": 2}[self.value]


class TimeoutRule(StrEnum):
    FAIL_CLOSED = "fail-closed"
    FAIL_OPEN = "fail-open"
    CANCEL = "cancel"


class DataSensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


_RISK_RANK = {RiskClass.LOW: 0, RiskClass.MEDIUM: 1, RiskClass.HIGH: 2}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# No build metadata: Signoff appends the content hash as the build part of the version.
_SEMVER = r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$"
PROBLEMS = "policy problems:\n"  # marks a validator message that already carries its paths


def parse_duration(value: Any) -> Any:
    """'10m' / '2h' / '45s' / '1d' or a number of seconds -> seconds (int)."""
    if isinstance(value, bool):
        return value  # let pydantic reject it with its own message
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"duration {value!r} must look like 45s, 10m, 2h or 1d")
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


# A wait longer than a Standard execution's one-year limit could never end.
Seconds = Annotated[int, BeforeValidator(parse_duration), Field(ge=1, le=365 * 86400)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weights(_Strict):
    model: float = Field(ge=0)
    validation: float = Field(ge=0)
    observability: float = Field(ge=0)
    history: float = Field(ge=0)

    @model_validator(mode="after")
    def _sum_to_100(self) -> Weights:
        total = self.model + self.validation + self.observability + self.history
        if abs(total - 100) > 1e-9:
            raise ValueError(f"weights must add up to 100 (they add up to {total:g})")
        return self


class Penalties(_Strict):
    production_data: float = Field(ge=0, le=100)
    no_rollback: float = Field(ge=0, le=100)
    blast_radius: float = Field(ge=0, le=100)


class RiskConditions(_Strict):
    """All given conditions must hold for the rule to fire."""

    environments: list[str] | None = None
    blast_radius_pct_at_least: float | None = Field(default=None, ge=0, le=100)
    data_sensitivity: list[DataSensitivity] | None = None
    rollback_available: bool | None = None
    migration: bool | None = None
    production_data: bool | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> RiskConditions:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("a rule needs at least one condition")
        return self


class RiskRule(_Strict):
    name: str = Field(min_length=1, max_length=64)
    when: RiskConditions
    risk: RiskClass


class Thresholds(_Strict):
    auto: float = Field(ge=0, le=100)
    manual: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.manual > self.auto:
            raise ValueError(f"manual ({self.manual:g}) must not be above auto ({self.auto:g})")
        return self


class Escalation(_Strict):
    route: str = Field(min_length=1)
    wait: Seconds


class GateProfile(_Strict):
    kind: GateKind
    veto_window: Seconds | None = None
    approval_deadline: Seconds | None = None
    escalation: Escalation | None = None
    timeout_rule: TimeoutRule | None = None
    approvals_required: int = Field(default=1, ge=1, le=10)
    requester_may_approve: bool = False
    comment_required: bool = False
    sensitive: bool = False

    @model_validator(mode="after")
    def _params_fit_kind(self) -> GateProfile:
        if self.kind is GateKind.SOFT:
            if self.veto_window is None:
                raise ValueError("a soft gate needs veto_window")
            if self.approval_deadline is not None:
                raise ValueError("a soft gate has a veto_window, not an approval_deadline")
        if self.kind is GateKind.HARD:
            if self.approval_deadline is None:
                raise ValueError("a hard gate needs approval_deadline")
            if self.veto_window is not None:
                raise ValueError("a hard gate has an approval_deadline, not a veto_window")
        if self.kind is not GateKind.AUTO and self.timeout_rule is None:
            raise ValueError(f"a {self.kind} gate needs timeout_rule (fail-closed, fail-open or cancel)")
        return self

    @property
    def first_wait(self) -> int:
        """Seconds the workflow waits for people before escalating or applying the timeout rule."""
        return self.veto_window or self.approval_deadline or 0

    @property
    def total_wait(self) -> int:
        """Seconds from the request to the final deadline, escalation included."""
        return self.first_wait + (self.escalation.wait if self.escalation else 0)


Matrix = dict[RiskClass, dict[Band, str]]


class Policy(_Strict):
    version: str = Field(pattern=_SEMVER)
    environments: list[str] = Field(min_length=1)
    weights: Weights
    penalties: Penalties
    blast_radius_limit_pct: float = Field(ge=0, le=100)
    risk_rules: list[RiskRule] = Field(default_factory=list)
    default_risk: RiskClass = RiskClass.LOW
    sensitive_data: list[DataSensitivity] = Field(default_factory=list)
    thresholds: dict[RiskClass, Thresholds]
    matrix: Matrix
    gates: dict[str, GateProfile]
    # Optional: a fitted map (from `signoff calibrate`); the engine then gates on the calibrated
    # score, so `thresholds` are in calibrated units for the classes the map covers.
    calibration: Calibration | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        """Cross-field rules. Every problem is reported, each as `path: reason`."""
        problems = self._missing_entries()
        if self.calibration is not None:
            unknown_classes = sorted(set(self.calibration.curves) - {r.value for r in RiskClass})
            if unknown_classes:
                problems.append(f"calibration.curves: unknown risk classes {', '.join(unknown_classes)}")
        for i, rule in enumerate(self.risk_rules):
            unknown = sorted(set(rule.when.environments or []) - set(self.environments))
            if unknown:
                problems.append(f"risk_rules[{i}].when.environments: unknown environments {', '.join(unknown)}")
        if not problems:
            problems = self._non_monotonic()
        if problems:
            raise ValueError(PROBLEMS + "\n".join(problems))
        return self

    def _missing_entries(self) -> list[str]:
        problems = []
        for name, table in (("thresholds", self.thresholds), ("matrix", self.matrix)):
            missing = sorted(set(RiskClass) - set(table))
            if missing:
                problems.append(f"{name}: misses risk classes {', '.join(missing)}")
        for risk, row in self.matrix.items():
            missing_bands = sorted(set(Band) - set(row))
            if missing_bands:
                problems.append(f"matrix.{risk}: misses bands {', '.join(missing_bands)}")
            problems += [
                f"matrix.{risk}.{band}: names unknown gate {gate!r} (gates: {', '.join(self.gates)})"
                for band, gate in row.items()
                if gate not in self.gates
            ]
        return problems

    def _non_monotonic(self) -> list[str]:
        """Better confidence never makes a gate stricter; more risk never makes it laxer.
        The engine's safety properties rest on this, so an inconsistent table is refused."""
        problems = []
        order = [Band.LOW, Band.MEDIUM, Band.HIGH]
        for risk in RiskClass:
            kinds = [self.gates[self.matrix[risk][b]].kind.strictness for b in order]
            if any(later > earlier for earlier, later in zip(kinds, kinds[1:], strict=False)):
                problems.append(f"matrix.{risk}: a higher confidence band must not map to a stricter gate")
        risks = [RiskClass.LOW, RiskClass.MEDIUM, RiskClass.HIGH]
        for band in order:
            kinds = [self.gates[self.matrix[r][band]].kind.strictness for r in risks]
            if any(later < earlier for earlier, later in zip(kinds, kinds[1:], strict=False)):
                problems.append(f"matrix (band {band}): a higher risk class must not map to a laxer gate")
        return problems


class LoadedPolicy(BaseModel):
    """A validated policy and its identity: the declared semver plus a hash of its content."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    policy: Policy
    sha256: str

    @property
    def version(self) -> str:
        return f"{self.policy.version}+{self.sha256[:12]}"

    @property
    def calibration_version(self) -> str | None:
        """The calibration map's own semver+hash, when the policy carries one."""
        return self.policy.calibration.stamp if self.policy.calibration else None


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def format_loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def validation_problems(exc: ValidationError) -> list[str]:
    """`path: reason` for each pydantic error; cross-field validators name their own paths."""
    problems: list[str] = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if message.startswith(PROBLEMS):
            prefix = format_loc(err["loc"]) + "." if err["loc"] else ""
            problems += [prefix + line for line in message.removeprefix(PROBLEMS).splitlines()]
        else:
            problems.append(f"{format_loc(err['loc'])}: {message}")
    return problems


def parse_policy(data: Any, source: str = "policy") -> LoadedPolicy:
    """Validate parsed policy content. Raises PolicyError listing `path: reason` for each problem."""
    if not isinstance(data, dict):
        raise PolicyError(source, ["(top level): the policy must be a mapping"])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, validation_problems(exc)) from None
    digest = hashlib.sha256(canonical_json(data).encode()).hexdigest()
    return LoadedPolicy(policy=policy, sha256=digest)


def load_policy(path: str | Path) -> LoadedPolicy:
    """Read and validate a policy YAML file."""
    import yaml  # only the CLI, synthesis and cold starts read YAML

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_policy(data, source=str(path))
