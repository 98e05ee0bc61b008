"""What-if replay: what a candidate policy would have decided on past checkpoints.

Every checkpoint's trail holds the request it was created with (signals, risk facts, environment),
so the engine can score it again under another policy: the same `assess` intake runs, offline.
The replay names each checkpoint whose gate would change (auto <-> soft <-> hard), counts the
changes per risk class and environment, and points at what matters most: past failures, rollbacks
and denials the candidate would have auto-executed, and the approvals it would have saved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from signoff.domain.engine import assess
from signoff.domain.errors import InvalidRequest
from signoff.domain.models import CheckpointRequest
from signoff.domain.policy import GateKind, LoadedPolicy
from signoff.tools.trail import Past


@dataclass(frozen=True)
class Change:
    """One checkpoint whose gate the candidate would change."""

    checkpoint_id: str
    at: str
    environment: str
    risk_before: str
    risk_after: str
    score_before: float
    score_after: float
    gate_before: str
    gate_after: str
    profile_before: str
    profile_after: str
    status: str | None
    outcome: str | None

    @property
    def transition(self) -> str:
        return f"{self.gate_before}->{self.gate_after}"

    @property
    def laxer(self) -> bool:
        return GateKind(self.gate_after).strictness < GateKind(self.gate_before).strictness


@dataclass
class Replay:
    candidate_version: str
    replayed: int = 0
    unchanged: int = 0
    changes: list[Change] = field(default_factory=list)
    # (risk class before, environment) -> "auto->soft" -> count
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    not_replayable: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
    # Past checkpoints that went badly and the candidate would auto-execute.
    auto_failures: list[str] = field(default_factory=list)  # failure / rolled back, auto under the candidate
    newly_auto_failures: list[str] = field(default_factory=list)  # ... and not auto when they ran
    newly_auto_denied: list[str] = field(default_factory=list)  # denied (or vetoed) by people, now auto
    approvals_saved: int = 0  # approvals people gave or were asked for that the candidate skips
    approvals_added: int = 0
    veto_windows_saved: int = 0
    veto_windows_added: int = 0

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["changes"] = [{**asdict(c), "transition": c.transition} for c in self.changes]
        data["not_replayable"] = [{"checkpoint_id": i, "why": w} for i, w in self.not_replayable]
        return data


def replay(past: Sequence[Past], candidate: LoadedPolicy) -> Replay:
    """Assess every past checkpoint again under the candidate; compare gates."""
    result = Replay(candidate_version=candidate.version)
    for p in past:
        try:
            request = CheckpointRequest.model_validate(p.request)
            if request.environment not in candidate.policy.environments:
                raise InvalidRequest("environment", f"the candidate has no environment {request.environment!r}")
            after = assess(request, candidate)
        except (ValidationError, InvalidRequest, KeyError) as exc:
            result.not_replayable.append((p.checkpoint_id, _why(exc)))
            continue
        score_after = after.calibrated_score if after.calibrated_score is not None else after.score.score
        _compare(result, p, after.gate.kind.value, after.risk.risk_class.value, score_after, after.gate.profile)
        _approvals(result, p, after.gate.kind.value, after.gate.approvals_required)
    return result


def shadow_report(past: Sequence[Past]) -> dict[str, Replay]:
    """Per shadow policy version: what it said on each checkpoint (as recorded when the checkpoint was
    requested) against the gate that acted. Checkpoints without a shadow verdict are left out."""
    reports: dict[str, Replay] = {}
    for p in past:
        if not p.shadow:
            continue
        version = str(p.shadow.get("policy_version"))
        result = reports.setdefault(version, Replay(candidate_version=version))
        if p.shadow.get("error") or not p.shadow.get("gate"):
            result.not_replayable.append((p.checkpoint_id, str(p.shadow.get("error") or "no gate recorded")))
            continue
        gate = str(p.shadow["gate"])
        score = p.shadow.get("calibrated_score", p.shadow.get("score"))
        _compare(result, p, gate, str(p.shadow.get("risk_class")), float(score or 0), str(p.shadow.get("profile")))
        _approvals(result, p, gate, int(p.shadow.get("approvals_required") or 1))
    return reports


def _compare(result: Replay, p: Past, gate: str, risk: str, score: float, profile: str) -> None:
    result.replayed += 1
    if gate == GateKind.AUTO and p.failed:
        result.auto_failures.append(p.checkpoint_id)
    if p.gate == gate:
        result.unchanged += 1
        return
    change = Change(
        checkpoint_id=p.checkpoint_id,
        at=p.at,
        environment=p.environment,
        risk_before=p.risk,
        risk_after=risk,
        score_before=p.score,
        score_after=score,
        gate_before=p.gate,
        gate_after=gate,
        profile_before=str(p.assessment["gate"].get("profile")),
        profile_after=profile,
        status=p.status,
        outcome=p.outcome,
    )
    result.changes.append(change)
    key = f"{change.risk_before}/{change.environment}"
    row = result.by_class.setdefault(key, {})
    row[change.transition] = row.get(change.transition, 0) + 1
    if gate == GateKind.AUTO:
        if p.failed:
            result.newly_auto_failures.append(p.checkpoint_id)
        if p.status == "DENIED":
            result.newly_auto_denied.append(p.checkpoint_id)


def _approvals(result: Replay, p: Past, gate: str, approvals_after: int) -> None:
    """Approvals and veto windows the other gate would have saved (or added)."""
    if p.gate == gate:
        return
    before_approvals = int(p.assessment["gate"].get("approvals_required") or 1)
    if p.gate == GateKind.HARD:
        result.approvals_saved += before_approvals
    if gate == GateKind.HARD:
        result.approvals_added += approvals_after
    if p.gate == GateKind.SOFT:
        result.veto_windows_saved += 1
    if gate == GateKind.SOFT:
        result.veto_windows_added += 1


def _why(exc: Exception) -> str:
    if isinstance(exc, InvalidRequest):
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return f"the trail lacks {exc}"


def transitions(result: Replay) -> Counter[str]:
    """auto->soft etc. over all classes."""
    return Counter(c.transition for c in result.changes)


def render(result: Replay, past_count: int, shadow: bool = False) -> str:
    if shadow:
        head = (
            f"shadow policy {result.candidate_version} on {result.replayed} checkpoints: "
            f"{len(result.changes)} would have gone through another gate, {result.unchanged} the same (it never acted)"
        )
    else:
        head = (
            f"replayed {result.replayed} of {past_count} past checkpoints under policy {result.candidate_version}: "
            f"{len(result.changes)} would change gate, {result.unchanged} would not"
        )
    lines = [head]
    if result.not_replayable:
        lines.append(f"not replayable ({len(result.not_replayable)}):")
        lines += [f"  {cid}: {why}" for cid, why in result.not_replayable]
    if result.by_class:
        lines.append("gate changes per risk class / environment:")
        for key in sorted(result.by_class):
            row = result.by_class[key]
            lines.append(f"  {key:<22}" + ", ".join(f"{t} {n}" for t, n in sorted(row.items())))
    lines.append(
        f"approvals saved {result.approvals_saved}, added {result.approvals_added}; "
        f"veto windows saved {result.veto_windows_saved}, added {result.veto_windows_added}"
    )
    lines.append(
        f"past failures/rollbacks it would auto-execute: {len(result.auto_failures)} "
        f"({len(result.newly_auto_failures)} not auto-executed when they ran)"
        + (": " + ", ".join(result.newly_auto_failures) if result.newly_auto_failures else "")
    )
    if result.newly_auto_denied:
        lines.append(f"denied by people, now auto-executed: {', '.join(result.newly_auto_denied)}")
    if result.changes:
        lines.append("changed checkpoints:")
        for c in result.changes:
            extra = f" outcome {c.outcome}" if c.outcome else ""
            lines.append(
                f"  {c.checkpoint_id}  {c.transition:<11} {c.risk_before}->{c.risk_after} {c.environment} "
                f"score {c.score_before:g}->{c.score_after:g} ({c.profile_before}->{c.profile_after}) "
                f"{c.status or 'PENDING'}{extra}"
            )
    return "\n".join(lines)
