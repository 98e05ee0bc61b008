"""`helpdesk.yaml`: channels and visibility, request classes with labeled examples, per-class thresholds
and risk, knowledge sources, queues, approval forms, cue vocabularies, confidence weights, throttling and
the repeat/incident windows. Validated with pydantic like the checkpoint policy: every error names its
path, and the version stamped on each triage is the declared semver plus a hash of the content."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from signoff.domain.errors import PolicyError
from signoff.domain.policy import _SEMVER, PROBLEMS, Seconds, canonical_json, validation_problems
from signoff.domain.urls import callback_refusal, loopback_allowed


class Route(StrEnum):
    """The five paths of the helpdesk (the seed article's comparison table)."""

    ANSWER = "answer"
    APPROVAL = "approval"
    HANDOFF = "handoff"
    TICKET = "ticket"
    INCIDENT = "incident"


class Visibility(StrEnum):
    """Where a reply may go, from the most public to the most private."""

    PUBLIC_THREAD = "public_thread"
    PRIVATE_THREAD = "private_thread"  # in the thread, visible to the asker only (ephemeral)
    DM = "dm"

    @property
    def privacy(self) -> int:
        return {"public_thread": 0, "private_thread": 1, "dm": 2}[self.value]


class ChannelKind(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    DM = "dm"


class Authority(StrEnum):
    OFFICIAL = "official"
    GUIDANCE = "guidance"
    COMMUNITY = "community"


# The classes the router's rules are written for; a config may add more, never drop these.
REQUIRED_CLASSES = (
    "how_to",
    "access_request",
    "password_mfa",
    "software_request",
    "policy_exception",
    "incident",
    "ticket_only",
    "out_of_scope",
)
# Cue families behind "never answered by the model alone": a config may extend them, not empty them.
PRIVILEGED_FAMILIES = ("access", "production", "finance", "security")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channel(_Strict):
    """A Slack channel the helpdesk listens in. `most_public` caps where replies go in it."""

    id: str = Field(pattern=r"^[CGD][A-Z0-9]{2,}$")
    name: str = Field(min_length=1)
    kind: ChannelKind
    most_public: Visibility = Visibility.PUBLIC_THREAD
    incidents: bool = False  # the incident channel: incident reports are posted here


class Queue(_Strict):
    """A human queue: who is pinged, who is paged, where tickets go."""

    usergroup: str = Field(pattern=r"^S[A-Z0-9]{2,}$", description="Slack user group id")
    handle: str = Field(pattern=r"^@[a-z0-9-]+$")
    oncall: str | None = Field(default=None, description="a team of routing.yaml with an on_call rotation")
    ticket_project: str = Field(pattern=r"^[A-Z][A-Z0-9]{1,9}$")
    area: str = Field(min_length=1)
    # Handed off and unclaimed this long: the queue's on-call is pinged (once per conversation).
    first_response: Seconds | None = None


class FormInput(StrEnum):
    """How the approval modal asks for a field: typed text, a person of the workspace, or one of
    the class's systems (its `approval.systems`)."""

    TEXT = "text"
    PERSON = "person"
    SYSTEM = "system"


class FormField(_Strict):
    name: str = Field(pattern=r"^[a-z_]+$")
    label: str = Field(min_length=1)
    required: bool = True
    input: FormInput = FormInput.TEXT
    # Words or phrases whose presence in the request means the asker already gave this field.
    detect: list[str] = Field(default_factory=list)


class Form(_Strict):
    """What an approval modal asks for, and who approves (shown in the boundary statement)."""

    title: str = Field(min_length=1)
    approvers: str = Field(min_length=1, description='e.g. "your manager and security"')
    fields: list[FormField] = Field(min_length=1)


class ApprovalStep(StrEnum):
    """Who approves one step of a helpdesk approval: the person the form names as manager, the
    team that owns the system (routing.yaml's service of that name), or the members of the flow's
    `role` in routing.yaml (security for a policy exception, say)."""

    MANAGER = "manager"
    SYSTEM_OWNER = "system_owner"
    ROLE = "role"


class ApprovalFlow(_Strict):
    """How an approval class becomes Signoff checkpoints (usecases/helpdesk_approvals.py): one per
    step, in order, each created only once the one before is approved; on the last approval (and,
    with `change_ticket`, once the change ticket is open) the executor (the organisation's
    automation) receives a signed webhook."""

    steps: list[ApprovalStep] = Field(min_length=1, max_length=5)
    action: str = Field(pattern=r"^[a-z][a-z0-9-]{1,62}$", description="the checkpoint's action")
    environment: str = Field(min_length=1, description="the checkpoint's environment (one of the policy's)")
    executor: str = Field(max_length=2048, description="https only, checked like a checkpoint's callback_url")
    systems: list[str] = Field(default_factory=list, description="routing.yaml services the form offers")
    role: str | None = Field(default=None, description="the routing.yaml role whose members decide a role step")
    change_ticket: bool = Field(
        default=False,
        description="approval, then the ticket, then the change: once every step is approved a change ticket "
        "is opened in the class's queue's ticket project, and the executor runs only with its key",
    )

    @model_validator(mode="after")
    def _executor_allowed(self) -> ApprovalFlow:
        refusal = callback_refusal(self.executor, allow_loopback=loopback_allowed())
        if refusal:
            raise ValueError(f"executor: {refusal}")
        if ApprovalStep.SYSTEM_OWNER in self.steps and not self.systems:
            raise ValueError("systems: a system_owner step needs the systems the form offers")
        if ApprovalStep.ROLE in self.steps and not self.role:
            raise ValueError("role: a role step needs the routing.yaml role whose members decide it")
        return self


class RequestClass(_Strict):
    description: str = Field(min_length=1)
    route: Route
    threshold: float = Field(ge=0, le=100, description="confidence needed to take `route`")
    risk: float = Field(ge=1, le=3, description="multiplies the threshold: riskier classes need more")
    queue: str
    visibility: Visibility
    privileged: bool = False  # never answered publicly, never done by the model alone
    personal: bool = False  # about the asker's own account or data: never answered publicly
    form: str | None = None
    approval: ApprovalFlow | None = None  # absent: the bot states its boundary and offers a person
    next_step: str = Field(min_length=1)
    examples: list[str] = Field(min_length=3)

    @property
    def required_confidence(self) -> float:
        return min(100.0, self.threshold * self.risk)


class Weights(_Strict):
    retrieval: float = Field(ge=0)
    margin: float = Field(ge=0)
    grounding: float = Field(ge=0)
    classifier: float = Field(ge=0)

    @model_validator(mode="after")
    def _sum_to_100(self) -> Weights:
        total = self.retrieval + self.margin + self.grounding + self.classifier
        if abs(total - 100) > 1e-9:
            raise ValueError(f"weights must add up to 100 (they add up to {total:g})")
        return self


class Penalties(_Strict):
    sensitive: float = Field(ge=0, le=100)
    privileged: float = Field(ge=0, le=100)
    missing_fields: float = Field(ge=0, le=100)
    frustration: float = Field(ge=0, le=100)
    unfamiliar: float = Field(ge=0, le=100)
    stale_source: float = Field(ge=0, le=100)
    injection: float = Field(ge=0, le=100)
    secret: float = Field(ge=0, le=100)


class ConfidenceSettings(_Strict):
    weights: Weights
    penalties: Penalties
    unfamiliar_share: float = Field(ge=0, le=1, description="share of unknown terms that counts as unfamiliar")
    min_answer_coverage: float = Field(ge=0, le=1, description="an answer must cover this share of the question")


class Cues(_Strict):
    """Vocabularies the rules look for (phrases, matched on word boundaries, case-insensitive)."""

    privileged: dict[str, list[str]]
    incident: list[str] = Field(min_length=1)
    frustration: list[str] = Field(min_length=1)
    sensitive: list[str] = Field(min_length=1)
    injection: list[str] = Field(min_length=1)
    other_account: list[str] = Field(default_factory=list)


class KnowledgeSettings(_Strict):
    folder: str = Field(min_length=1)
    max_age_days: int = Field(ge=1, le=3650, description="a source reviewed longer ago is stale")
    authority_weight: dict[Authority, float]
    passages: int = Field(default=5, ge=1, le=20)


_MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9.:_/-]{2,200}$"


class BedrockModel(_Strict):
    """Amazon Bedrock for drafting (`Converse`) and, optionally, a Knowledge Base for retrieval. The
    deployment grants bedrock:InvokeModel on `model_id` only (and bedrock:Retrieve on the KB only)."""

    model_id: str = Field(pattern=_MODEL_ID, description="a foundation model id or inference profile id")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    knowledge_base_id: str | None = Field(default=None, pattern=r"^[A-Z0-9]{10}$")
    guardrail_id: str | None = Field(default=None, pattern=r"^[a-z0-9]{12}$")
    guardrail_version: str = Field(default="DRAFT", pattern=r"^(DRAFT|[1-9][0-9]{0,7})$")
    max_tokens: int = Field(default=400, ge=50, le=2000)
    temperature: float = Field(default=0.0, ge=0, le=1)
    timeout_seconds: float = Field(default=8.0, gt=0, le=30, description="read timeout of one model call")


class ModelSettings(_Strict):
    """Which models draft and retrieve. `embedded` (the default) needs no network: naive Bayes, FTS5
    BM25 and extractive drafts. `bedrock` keeps the embedded classifier and rules, drafts with a
    Bedrock model from the retrieved passages only, and falls back to the embedded draft on any error."""

    provider: Literal["embedded", "bedrock"] = "embedded"
    bedrock: BedrockModel | None = None

    @model_validator(mode="after")
    def _bedrock_named(self) -> ModelSettings:
        if self.provider == "bedrock" and self.bedrock is None:
            raise ValueError("provider bedrock needs a bedrock section (model_id at least)")
        return self


class Throttling(_Strict):
    per_user_per_minute: int = Field(ge=1)
    per_channel_per_minute: int = Field(ge=1)


class IncidentCollapse(_Strict):
    """Which incident reports are "the same outage": a report naming a symptom and the same set of
    subjects (systems) as an open incident, within `incident_collapse_window`, joins its thread.
    Security reports (phishing, a stolen laptop) name no outage symptom: each stays its own incident."""

    symptoms: list[str] = Field(min_length=1, description="outage phrases, matched like cues")
    subjects: dict[str, list[str]] = Field(min_length=1, description="a system -> the words that name it")


class HelpdeskConfig(_Strict):
    version: str = Field(pattern=_SEMVER)
    organization: str = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    unknown_channel_most_public: Visibility = Visibility.PRIVATE_THREAD
    classes: dict[str, RequestClass]
    queues: dict[str, Queue]
    forms: dict[str, Form]
    cues: Cues
    confidence: ConfidenceSettings
    knowledge: KnowledgeSettings
    throttling: Throttling
    repeat_window: Seconds
    incident_collapse_window: Seconds
    model: ModelSettings = Field(default_factory=ModelSettings)
    incident_collapse: IncidentCollapse | None = None  # None: every incident report opens its own

    @model_validator(mode="after")
    def _consistent(self) -> HelpdeskConfig:
        """Cross-field rules; every problem is reported as `path: reason`."""
        problems = [f"classes: misses the class {name!r}" for name in REQUIRED_CLASSES if name not in self.classes]
        for name, cls in self.classes.items():
            problems += _class_problems(name, cls, self)
        for family in PRIVILEGED_FAMILIES:
            if not self.cues.privileged.get(family):
                problems.append(f"cues.privileged.{family}: must list at least one cue")
        ids = [c.id for c in self.channels]
        problems += [f"channels: channel {i} is listed twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
        if not any(c.incidents for c in self.channels):
            problems.append("channels: one channel must be marked incidents: true")
        for name, queue in self.queues.items():
            if queue.first_response is not None and not queue.oncall:
                problems.append(f"queues.{name}.first_response: a first-response deadline needs an oncall to ping")
        if problems:
            raise ValueError(PROBLEMS + "\n".join(problems))
        return self

    def channel(self, channel_id: str) -> Channel | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    @property
    def incident_channel(self) -> Channel:
        return next(c for c in self.channels if c.incidents)


def _class_problems(name: str, cls: RequestClass, config: HelpdeskConfig) -> list[str]:
    path = f"classes.{name}"
    problems = []
    if cls.queue not in config.queues:
        problems.append(f"{path}.queue: names unknown queue {cls.queue!r} (queues: {', '.join(config.queues)})")
    if cls.form is not None and cls.form not in config.forms:
        problems.append(f"{path}.form: names unknown form {cls.form!r} (forms: {', '.join(config.forms)})")
    if cls.route is Route.APPROVAL and cls.form is None:
        problems.append(f"{path}.form: an approval class needs a form")
    if cls.approval is not None:
        problems += _approval_problems(path, cls, cls.approval, config)
    if (cls.privileged or cls.personal) and cls.visibility is Visibility.PUBLIC_THREAD:
        problems.append(f"{path}.visibility: a privileged or personal class is never answered in a public thread")
    if cls.privileged and cls.route is Route.ANSWER:
        problems.append(f"{path}.route: a privileged class is never answered by the model alone")
    if cls.route is Route.INCIDENT and config.queues.get(cls.queue) and not config.queues[cls.queue].oncall:
        problems.append(f"{path}.queue: an incident class needs a queue with an on-call rotation")
    return problems


def _approval_problems(path: str, cls: RequestClass, flow: ApprovalFlow, config: HelpdeskConfig) -> list[str]:
    """An approval flow needs a form asking for what its steps use."""
    if cls.route is not Route.APPROVAL:
        return [f"{path}.approval: only an approval class has an approval flow"]
    form = config.forms.get(cls.form or "")
    if form is None:
        return []  # reported as an unknown form
    inputs = {f.input for f in form.fields if f.required}
    problems = []
    needs = {ApprovalStep.MANAGER: FormInput.PERSON, ApprovalStep.SYSTEM_OWNER: FormInput.SYSTEM}
    for step, needed in needs.items():
        if step in flow.steps and needed not in inputs:
            problems.append(f"{path}.approval.steps: a {step} step needs a required {needed} field in {cls.form!r}")
    return problems


class LoadedHelpdeskConfig(BaseModel):
    """A validated config and its identity: the declared semver plus a hash of its content."""

    model_config = ConfigDict(frozen=True)

    config: HelpdeskConfig
    sha256: str
    source: str

    @property
    def version(self) -> str:
        return f"{self.config.version}+{self.sha256[:12]}"


def parse_helpdesk_config(data: Any, source: str = "helpdesk.yaml") -> LoadedHelpdeskConfig:
    """Validate parsed content. Raises PolicyError listing `path: reason` for each problem."""
    if not isinstance(data, dict):
        raise PolicyError(source, ["(top level): the helpdesk config must be a mapping"])
    try:
        config = HelpdeskConfig.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, validation_problems(exc)) from None
    digest = hashlib.sha256(canonical_json(data).encode()).hexdigest()
    return LoadedHelpdeskConfig(config=config, sha256=digest, source=source)


def load_helpdesk_config(path: str | Path) -> LoadedHelpdeskConfig:
    """Read and validate a helpdesk YAML file."""
    import yaml  # only cold starts and the CLI read YAML

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_helpdesk_config(data, source=str(path))
