"""Domain models: what a caller asks for, how the engine assessed it, and the stored checkpoint."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints
from pydantic import Strict as _Strict

from signoff.domain.policy import Band, DataSensitivity, GateKind, RiskClass, TimeoutRule
from signoff.domain.urls import PRIVATE_SUFFIXES, callback_refusal, loopback_allowed

_ID_PATTERN = r"^cp_[0-9a-z]{26}$"
CHECKPOINT_ID_RE = re.compile(_ID_PATTERN)

# Control characters other than tab, line feed and carriage return (C0, DEL, C1): they corrupt
# logs, chat cards and terminals, and no text a caller means to send holds them. The API refuses
# them before parsing (naming the field); these patterns put the same rule in the models (the
# embedded-workflow path) and in the OpenAPI document.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
TEXT_PATTERN = rf"^[^{_CONTROL}]*$"
# At least one character that is neither space nor control: the value is stripped, then must not be empty.
NONBLANK_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"

CheckpointId = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
# Numbers and booleans are strict: "0.9" is not a confidence and 1 is not true (JSON says what it means).
Unit = Annotated[float, _Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Score = Annotated[float, Field(ge=0, le=100)]
Percent = Annotated[float, _Strict(), Field(ge=0, le=100, allow_inf_nan=False)]
ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NONBLANK_PATTERN)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NONBLANK_PATTERN)]


def _web_url(url: str) -> str:
    if url.startswith(("https://", "http://")):
        return url
    raise ValueError("must be an http(s):// URL")


def _callback(url: str) -> str:
    refusal = callback_refusal(url, allow_loopback=loopback_allowed())
    if refusal:
        raise ValueError(refusal)
    return url


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


_PORT = r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
_REST = rf"(?:[/?#][^{_CONTROL}\s]*)?"
_PRIVATE_NAMES = "|".join(_any_case(suffix.lstrip(".")) for suffix in PRIVATE_SUFFIXES)
# What `callback_refusal` accepts, as a pattern (OpenAPI, ECMA regex): https, a DNS name ending in
# an alphabetic label (so no IP literal and no numeric IPv4 form), not under a private-use suffix
# nor a metadata name, an optional valid port. Names that resolve to a refused address pass it,
# and are refused at delivery.
_CALLBACK_PATTERN = (
    rf"^https://(?![^/?#]*\.(?:{_PRIVATE_NAMES})(?:[:/?#]|$))(?!{_any_case('metadata.goog')}(?:[:/?#]|$))"
    rf"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}{_PORT}{_REST}$"
)

# The validators say what is wrong; the documented patterns say what is accepted, so a client
# generating from the OpenAPI document does not send a "URL" the validator must refuse.
Url = Annotated[
    str,
    StringConstraints(max_length=2048),
    AfterValidator(_web_url),
    Field(json_schema_extra={"pattern": rf"^https?://[^{_CONTROL}\s]+$"}),
]
CallbackUrl = Annotated[
    str,
    StringConstraints(max_length=2048),
    AfterValidator(_callback),
    Field(
        json_schema_extra={"pattern": _CALLBACK_PATTERN},
        description="https only, to a public host name: IP literals, private-use and cloud metadata names "
        "are refused (422); at delivery the name is resolved and a private, loopback, link-local, multicast "
        "or metadata address is refused too",
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requester(_Model):
    """Who (or what) asks: a person, a pipeline or an agent, and on whose behalf."""

    id: Name = Field(description="Stable identity of the requester, e.g. an email or a service principal")
    display_name: ShortText | None = None
    email: (
        Annotated[str, StringConstraints(max_length=254, pattern=rf"^[^@\s{_CONTROL}]+@[^@\s{_CONTROL}]+$")] | None
    ) = None
    kind: Annotated[str, StringConstraints(pattern=r"^(person|pipeline|agent|workflow)$")] = "pipeline"


class ValidationCheck(_Model):
    name: Name
    passed: StrictBool
    detail: Annotated[str, StringConstraints(max_length=500, pattern=TEXT_PATTERN)] | None = None


class Signals(_Model):
    """The evidence the confidence score is made of."""

    model_confidence: Unit = Field(description="Model confidence in the proposed action, 0-1")
    validation: list[ValidationCheck] = Field(
        default_factory=list, max_length=100, description="Validation checks and whether each passed"
    )
    observability_alignment: Unit = Field(description="How well telemetry matches the expected state, 0-1")
    historical_success: Unit = Field(description="Success rate of similar past actions, 0-1")


class RiskFacts(_Model):
    blast_radius_pct: Percent = Field(description="Share of traffic/users affected")
    production_data: StrictBool = False
    rollback_available: StrictBool = True
    rollback_minutes: Annotated[float, _Strict(), Field(ge=0, le=10080, allow_inf_nan=False)] | None = None
    migration: StrictBool = False
    data_sensitivity: DataSensitivity = DataSensitivity.INTERNAL
    customer_impact: Annotated[str, StringConstraints(max_length=300, pattern=TEXT_PATTERN)] | None = None


class TestResult(_Model):
    name: Name
    passed: StrictInt = Field(ge=0)
    failed: StrictInt = Field(ge=0)
    coverage_pct: Percent | None = None


class Link(_Model):
    title: ShortText
    url: Url


class Evidence(_Model):
    """What an approver needs to decide in 30-90 seconds; bounded so a card always fits."""

    diff_summary: Annotated[str, StringConstraints(max_length=4000, pattern=TEXT_PATTERN)] | None = None
    tests: list[TestResult] = Field(default_factory=list, max_length=20)
    links: list[Link] = Field(default_factory=list, max_length=20)
    recommendation: Annotated[str, StringConstraints(max_length=1000, pattern=TEXT_PATTERN)] | None = None


DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class ToolCall(_Model):
    """An AI agent's tool call that the checkpoint gates. The approval holds for these exact
    arguments only: the agent SDK runs the tool only when the digest of the arguments it is about to
    pass equals `arguments_digest` (changed arguments need a new checkpoint)."""

    tool: Name = Field(description="The tool the agent wants to call")
    arguments_digest: Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)] = Field(
        description="sha256: of the canonical JSON of the arguments (sorted keys, no spaces, UTF-8)"
    )
    arguments_summary: Annotated[str, StringConstraints(max_length=2000, pattern=TEXT_PATTERN)] = Field(
        default="", description="The arguments as approvers see them: secrets and personal data redacted, truncated"
    )
    conversation_url: Url | None = Field(default=None, description="Where the agent's conversation or run can be read")
    framework: Name | None = Field(default=None, description="What asked: sdk, mcp-gateway, openai-agents, langgraph")


class CheckpointRequest(_Model):
    """POST /v1/checkpoints and POST /v1/score."""

    action: ShortText = Field(description="What the automation wants to do, e.g. 'deploy'")
    target: ShortText = Field(description="What it acts on, e.g. 'service-api v2.4.1'")
    environment: Name
    service: Name
    summary: Annotated[
        str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True, pattern=NONBLANK_PATTERN)
    ]
    requester: Requester
    signals: Signals
    risk: RiskFacts
    evidence: Evidence = Field(default_factory=Evidence)
    workflow_id: Name | None = None
    request_id: Name | None = None
    callback_url: CallbackUrl | None = None
    tool_call: ToolCall | None = Field(default=None, description="Set when an AI agent asks before calling a tool")


class Contribution(_Model):
    """One line of 'why this score': a signal's points or a penalty (negative)."""

    name: str
    points: float
    max_points: float
    detail: str


class ScoreBreakdown(_Model):
    score: Score
    raw: float = Field(description="Sum before clamping to 0-100")
    contributions: list[Contribution]
    penalties: list[Contribution]


class RiskAssessment(_Model):
    risk_class: RiskClass
    rule: str | None = Field(description="The rule that set the class; null when the default applied")
    fired: list[str] = Field(description="Every rule whose conditions held")


class GateDecision(_Model):
    kind: GateKind
    profile: str
    veto_window_seconds: int | None = None
    approval_deadline_seconds: int | None = None
    escalation_route: str | None = None
    escalation_wait_seconds: int | None = None
    timeout_rule: TimeoutRule | None = None
    approvals_required: int = 1
    requester_may_approve: bool = False
    comment_required: bool = False
    sensitive: bool = False


class Assessment(_Model):
    """Everything the engine concluded, kept verbatim on the checkpoint and shown to approvers."""

    score: ScoreBreakdown
    risk: RiskAssessment
    band: Band
    band_label: str
    thresholds: dict[str, float]
    gate: GateDecision
    policy_version: str
    explanation: list[str]
    # Set when the policy carries a calibration map for the risk class: the band (and so the gate)
    # comes from this calibrated score; `score` keeps the raw one.
    calibrated_score: float | None = None
    calibration_version: str | None = None


class Status(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class OutcomeKind(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    ROLLED_BACK = "rolled_back"


class OutcomeRequest(_Model):
    """POST /v1/checkpoints/{id}/outcome."""

    outcome: OutcomeKind
    details: Annotated[str, StringConstraints(max_length=2000, pattern=TEXT_PATTERN)] | None = None
    reported_by: Name | None = None


class Outcome(_Model):
    outcome: OutcomeKind
    details: str | None = None
    reported_by: str
    reported_at: datetime


class VoteKind(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class Vote(_Model):
    """One person's vote; a person votes at most once per checkpoint."""

    approver: str = Field(description="Directory id of the person")
    name: str
    kind: VoteKind
    comment: str | None = None
    conditions: dict[str, Any] | None = None
    surface: str = Field(description="slack or teams")
    at: datetime


class MessageRef(_Model):
    """A card posted to chat, kept so it can be updated in place after the decision."""

    surface: str
    channel: str
    ts: str = Field(description="Slack message ts or Teams activity id")
    kind: str = Field(default="card", description="card (updated in place) or escalation")
    service_url: str | None = Field(default=None, description="Teams: the Bot Connector service URL")


class ShadowVerdict(_Model):
    """What a shadow (candidate) policy deployed beside the active one would have decided.
    Recorded on the checkpoint, the REQUESTED event and the decision; it never acts."""

    policy_version: str
    gate: GateKind | None = None
    profile: str | None = None
    band: Band | None = None
    risk_class: RiskClass | None = None
    score: float | None = None
    calibrated_score: float | None = None
    approvals_required: int | None = None
    error: str | None = Field(default=None, description="Why the shadow could not assess the request")


class Checkpoint(_Model):
    """The stored checkpoint (the META item) as the API returns it."""

    id: CheckpointId
    status: Status
    created_at: datetime
    deadline: datetime | None = Field(description="When the timeout rule applies; null for auto gates")
    request: CheckpointRequest
    assessment: Assessment
    caller: str = Field(description="The authenticated principal that made the request")
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    conditions: dict[str, Any] | None = None
    outcome: Outcome | None = None
    approvers: list[str] = Field(default_factory=list, description="Who may approve (directory ids)")
    votes: list[Vote] = Field(default_factory=list)
    escalated: bool = False
    execution: str | None = Field(default=None, description="The approval workflow's execution name")
    messages: list[MessageRef] = Field(default_factory=list, description="Cards and notices posted to chat")
    audit_seq: int = Field(default=0, description="Number of audit events recorded so far")
    audit_head: str | None = Field(default=None, description="Hash of the latest audit event")
    shadow: ShadowVerdict | None = Field(default=None, description="A shadow policy's would-be decision (never acts)")


class CheckpointPage(_Model):
    items: list[Checkpoint]
    next_token: str | None = None
