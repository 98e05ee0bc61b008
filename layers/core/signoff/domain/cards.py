"""One card model for every chat surface: what an approver must see to decide in 30-90 seconds.
Block Kit (Slack) and Adaptive Cards (Teams) render this same content."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from signoff.domain.acts import Act
from signoff.domain.models import Assessment, Checkpoint, Status, VoteKind
from signoff.domain.policy import GateKind, TimeoutRule


@dataclass(frozen=True)
class Button:
    act: Act
    label: str
    style: str | None = None  # primary / danger


@dataclass(frozen=True)
class Card:
    checkpoint_id: str
    title: str
    summary: str
    score_line: str
    why: list[str]
    risk: list[str]
    evidence: list[str]
    links: list[tuple[str, str]]
    recommendation: str | None
    deadline: str | None
    ids: list[tuple[str, str]]
    policy_version: str
    votes: str | None
    outcome: str | None  # set once decided: who, when, why
    buttons: list[Button] = field(default_factory=list)
    escalated: bool = False


def hhmm(at: datetime) -> str:
    return at.strftime("%H:%M UTC")


def deadline_text(cp: Checkpoint) -> str | None:
    """What happens if nobody answers, in the requester's and approver's words."""
    gate = cp.assessment.gate
    if cp.deadline is None or gate.kind is GateKind.AUTO:
        return None
    at = hhmm(cp.deadline)
    if gate.kind is GateKind.SOFT:
        return f"Runs at {at} unless vetoed."
    consequence = {
        TimeoutRule.FAIL_CLOSED: "this request is denied automatically",
        TimeoutRule.FAIL_OPEN: "this request is approved automatically",
        TimeoutRule.CANCEL: "this request is cancelled and must be resubmitted",
    }[gate.timeout_rule or TimeoutRule.FAIL_CLOSED]
    text = f"If no response by {at} {consequence}."
    if gate.escalation_route and gate.approval_deadline_seconds and not cp.escalated:
        escalate_at = cp.created_at + timedelta(seconds=gate.approval_deadline_seconds)
        text = f"Escalates to {gate.escalation_route} at {hhmm(escalate_at)}. " + text
    return text


def _why(cp: Checkpoint) -> list[str]:
    score = cp.assessment.score
    lines = [
        f"{c.name} {c.points:g}/{c.max_points:g}: {c.detail}"
        for c in sorted(score.contributions, key=lambda c: c.points - c.max_points)
    ]
    lines += [f"{p.name} {p.points:g}: {p.detail}" for p in score.penalties]
    return lines


def _risk(cp: Checkpoint) -> list[str]:
    facts, risk = cp.request.risk, cp.assessment.risk
    rollback = (
        f"rollback available ({facts.rollback_minutes:g} min)" if facts.rollback_available and facts.rollback_minutes
        else "rollback available" if facts.rollback_available
        else "no rollback"
    )  # fmt: skip
    lines = [
        f"{risk.risk_class.capitalize()} risk"
        + (f" (rule {risk.rule})" if risk.rule else "")
        + f" — affects ~{facts.blast_radius_pct:g}% of traffic, {rollback}"
        + (", migration included" if facts.migration else ""),
    ]
    if facts.customer_impact:
        lines.append(f"Customer impact: {facts.customer_impact}")
    if facts.production_data:
        lines.append("Touches production data")
    return lines


def _tool_call(cp: Checkpoint) -> list[str]:
    """An agent's tool call first: what it would run, with which (redacted) arguments, and the digest
    the approval is bound to."""
    call, who = cp.request.tool_call, cp.request.requester
    if call is None:
        return []
    agent = f"{who.display_name} ({who.id})" if who.display_name else who.id
    return [
        f"Tool: {call.tool}, called by agent {agent}" + (f" via {call.framework}" if call.framework else ""),
        f"Arguments: {call.arguments_summary or '(none)'}",
        f"Arguments digest: {call.arguments_digest} (the approval holds for these exact arguments only)",
    ]


def _links(cp: Checkpoint) -> list[tuple[str, str]]:
    call = cp.request.tool_call
    conversation = [("Agent conversation", call.conversation_url)] if call and call.conversation_url else []
    return conversation + [(link.title, link.url) for link in cp.request.evidence.links]


def _evidence(cp: Checkpoint) -> list[str]:
    ev = cp.request.evidence
    lines = _tool_call(cp)
    lines += [f"Diff: {ev.diff_summary}"] if ev.diff_summary else []
    for t in ev.tests:
        coverage = f", coverage {t.coverage_pct:g}%" if t.coverage_pct is not None else ""
        lines.append(f"Tests {t.name}: {t.passed} passed, {t.failed} failed{coverage}")
    failing = [c for c in cp.request.signals.validation if not c.passed]
    lines += [f"Failing check {c.name}" + (f": {c.detail}" if c.detail else "") for c in failing]
    return lines


def _votes(cp: Checkpoint) -> str | None:
    gate = cp.assessment.gate
    if gate.kind is not GateKind.HARD:
        return None
    approvals = [v for v in cp.votes if v.kind is VoteKind.APPROVE]
    names = ", ".join(v.name for v in approvals) or "none yet"
    return f"{len(approvals)} of {gate.approvals_required} approvals: {names}"


def _outcome(cp: Checkpoint) -> str | None:
    if cp.status is Status.PENDING:
        return None
    verb = {
        Status.APPROVED: "Approved",
        Status.DENIED: "Denied",
        Status.EXPIRED: "Expired",
        Status.CANCELLED: "Cancelled",
    }[cp.status]
    when = hhmm(cp.decided_at) if cp.decided_at else ""
    text = f"{verb} by {cp.decided_by} at {when}"
    if cp.decision_reason:
        text += f": {cp.decision_reason}"
    if cp.conditions:
        text += " — conditions: " + ", ".join(f"{k} {v}" for k, v in cp.conditions.items())
    return text


def _buttons(cp: Checkpoint) -> list[Button]:
    if cp.status is not Status.PENDING:
        return []
    if cp.assessment.gate.kind is GateKind.SOFT:
        return [
            Button(Act.VETO, "Veto", "danger"),
            Button(Act.REQUEST_INFO, "Request more info"),
            Button(Act.VIEW_DETAILS, "View details"),
        ]
    return [
        Button(Act.APPROVE, "Approve", "primary"),
        Button(Act.DENY, "Deny", "danger"),
        Button(Act.REQUEST_INFO, "Request more info"),
        Button(Act.APPROVE_WITH_CONDITIONS, "Approve with conditions"),
        Button(Act.ESCALATE, "Escalate"),
        Button(Act.VIEW_DETAILS, "View details"),
    ]


def _score_line(a: Assessment) -> str:
    if a.calibrated_score is None:
        return f"Confidence Score: {a.score.score:g}/100 ({a.band_label})"
    # Both: approvers see what the signals said and what past outcomes say that score is worth.
    return f"Confidence Score: {a.calibrated_score:g}/100 calibrated, raw {a.score.score:g}/100 ({a.band_label})"


def build_card(cp: Checkpoint) -> Card:
    """The card for a checkpoint in its current state (votes so far; the outcome once decided)."""
    req, a = cp.request, cp.assessment
    kind = {GateKind.HARD: "Checkpoint Required", GateKind.SOFT: "Scheduled unless vetoed", GateKind.AUTO: "Auto"}
    return Card(
        checkpoint_id=cp.id,
        title=f"[{kind[a.gate.kind]}] {req.action.capitalize()} {req.target} to {req.environment}",
        summary=f"{req.summary} — requested by {req.requester.display_name or req.requester.id}",
        score_line=_score_line(a),
        why=_why(cp),
        risk=_risk(cp),
        evidence=_evidence(cp),
        links=_links(cp),
        recommendation=req.evidence.recommendation,
        deadline=deadline_text(cp),
        ids=[
            ("checkpoint", cp.id),
            ("request", req.request_id or "-"),
            ("workflow", req.workflow_id or "-"),
            ("service", req.service),
        ],
        policy_version=a.policy_version,
        votes=_votes(cp),
        outcome=_outcome(cp),
        buttons=_buttons(cp),
        escalated=cp.escalated,
    )
