"""POST /v1/teams/messages: what the Bot Connector sends the bot, as an API Gateway REST proxy
event in and a proxy response out.

Every request is authenticated first (`auth`: the connector's JWT for this bot and an allowed
tenant; a failure is a 401/403 and nothing is recorded). Then the activity id is claimed, so a
retried delivery changes nothing, and the activity is handled:

- `invoke` / `adaptiveCard/action`: a card button. The clicker is mapped to a directory person,
  the act goes through DecisionService (which authorizes, votes once, decides N of M and audits
  refusals), and the answer, within Teams' ~5 s, is the card as that person should now see it,
  with what happened (or why not) on top. Verb `refresh` is a client asking for that view. The
  other cards are re-rendered afterwards (`followups`).
- `installationUpdate` / `conversationUpdate`: the bot was added to (or removed from) a
  conversation: its reference (service URL, ids) is stored for posting there.
- `message`: a short help reply; or, from a client without Universal Actions, the Action.Submit
  fallback of a card button, handled like the click it stands for.

Buttons carry the checkpoint id only; anything a click claims beyond that is re-checked here.
Nothing logged here holds the token, the payload or what people typed."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from signoff.domain.acts import Act, Actor, Refused, can_see, check
from signoff.domain.cards import build_card, hhmm
from signoff.domain.errors import Conflict, NotFound
from signoff.domain.models import CHECKPOINT_ID_RE, Checkpoint, VoteKind
from signoff.domain.routing import LoadedRouting
from signoff.observability import logger
from signoff.ports import ActivityLog, CheckpointRepository, Clock, ConversationReference, ReferenceStore
from signoff.surfaces.teams.auth import BotAuthenticator, TeamsAuthError, TenantNotAllowed, activity_tenant, bearer
from signoff.surfaces.teams.cards import REFRESH_VERB, adaptive_card, details_card, details_sections, message_card
from signoff.surfaces.teams.chat import audience
from signoff.surfaces.teams.connector import BotConnector, ConnectorError, UntrustedServiceUrl
from signoff.surfaces.teams.identity import TeamsDirectory, base_conversation
from signoff.surfaces.teams.inputs import read_click_inputs
from signoff.usecases.decisions import DecisionService
from signoff.usecases.followups import Defer, Followup, Followups

CARD_ACTION = "adaptiveCard/action"
INVOKE_CARD = "application/vnd.microsoft.card.adaptive"
INVOKE_ERROR = "application/vnd.microsoft.error"
MAX_BODY = 256 * 1024  # an activity is a few KB; anything near API Gateway's limit is not one
HELP = (
    "I post Signoff checkpoints that need a decision. Use the buttons on a checkpoint's card to approve, "
    "deny, ask for more information or see its details; only its approvers can decide."
)
# check() runs before the inputs are read; a stand-in comment lets it judge everything else.
_INPUT_COMMENT = "(checked with the inputs)"
BUSY = "This checkpoint is very busy right now and nothing was recorded: please try again."
_WORDS = {VoteKind.APPROVE: "approval", VoteKind.DENY: "denial"}

Json = dict[str, Any]
Response = dict[str, Any]


class BadActivity(Exception):
    """A request body that is not an activity (400)."""


@dataclass(frozen=True)
class Answer:
    """What a click did: the clicker's card, what they are told, and the outcome for the log."""

    card: Json
    message: str
    outcome: str


@dataclass
class TeamsApp:
    authenticator: BotAuthenticator
    decisions: DecisionService
    repository: CheckpointRepository
    routing: LoadedRouting
    directory: TeamsDirectory
    references: ReferenceStore
    activities: ActivityLog
    connector: BotConnector
    followups: Followups

    @property
    def clock(self) -> Clock:
        return self.decisions.clock

    # -- the request ---------------------------------------------------------------------------

    def handle(self, event: Mapping[str, Any], defer: Defer | None = None) -> Response:
        """One API Gateway (REST proxy) event. `defer` runs follow-up work (default: right away)."""
        authorization = header(event, "authorization")
        try:
            bearer(authorization)  # no body is read for a request without a token at all
            activity = read_activity(event)
            caller = self.authenticator.authenticate(authorization, activity)
        except TenantNotAllowed:
            # A genuine Bot Framework activity (the token checked out) from a tenant that is not
            # ours: audited on the checkpoint it names, answered, and never answered back through
            # the connector.
            return self._stranger(activity)
        except TeamsAuthError as exc:
            logger.warning("teams request rejected", extra={"reason": exc.reason, "status": exc.status})
            return proxy(exc.status)
        except BadActivity as exc:
            logger.warning("teams request rejected", extra={"reason": str(exc), "status": 400})
            return proxy(400, {"error": str(exc)})
        key = f"{base_conversation(_str(activity, 'conversation', 'id'))}|{activity.get('id')}"
        # A refresh only reads (and comes whenever an approver looks at a card): nothing to dedupe.
        claimed = _action(activity)[0] != REFRESH_VERB
        if claimed and not self.activities.claim(key):
            return self._retried(activity, caller.tenant_id)
        later: list[Followup] = []
        try:
            response = self._dispatch(activity, caller.tenant_id, caller.service_url, later.append)
        except BaseException:
            # Nothing was answered: the id must not stay claimed, so the connector's retry is handled.
            if claimed:
                self.activities.release(key)
            raise
        # The activity is handled from here on (a retry changes nothing), whatever the follow-ups do.
        for followup in later:
            (defer or self.followups.run)(followup)
        return response

    def _stranger(self, activity: Json) -> Response:
        tenant = activity_tenant(activity) or "-"
        logger.warning("teams request from an unknown tenant", extra={"tenant_id": tenant})
        verb, data = _action(activity)
        if activity.get("type") != "invoke" or activity.get("name") != CARD_ACTION:
            return proxy(200)
        found = self._checkpoint(data)
        if isinstance(found, Checkpoint) and verb in {a.value for a in Act}:
            aad = _aad(activity)
            stranger = Actor(
                surface="teams", handle=f"teams:{tenant}/{aad}", person=None, name=aad, workspace_known=False
            )
            result = self.decisions.act(found.id, stranger, Act(verb))
            _log("teams click", found.id, verb, aad, _refused(result.refusal))
        return invoke_answer(_error(403, "This tenant is not connected to Signoff."))

    def _dispatch(self, activity: Json, tenant: str, service_url: str, defer: Defer) -> Response:
        kind = activity.get("type")
        if kind == "invoke":
            if activity.get("name") != CARD_ACTION:
                return proxy(501)
            return invoke_answer(self._card_action(activity, tenant, defer))
        if kind in ("installationUpdate", "conversationUpdate"):
            self._remember(activity, tenant, service_url)
        elif kind == "message":
            self._message(activity, tenant, service_url, defer)
        return proxy(200)

    def _retried(self, activity: Json, tenant: str) -> Response:
        """A delivery already handled: nothing happens again. An invoke still gets its card, as the
        clicker should see it now."""
        if activity.get("type") != "invoke" or activity.get("name") != CARD_ACTION:
            return proxy(200)
        found = self._checkpoint(_action(activity)[1])
        if not isinstance(found, Checkpoint):
            return invoke_answer(found)
        _log("teams retried activity", found.id, "-", _aad(activity), "ignored")
        return invoke_answer(_card(self.card_for(found, self.directory.actor(activity, tenant))))

    def _checkpoint(self, data: Mapping[str, Any]) -> Checkpoint | Json:
        """The checkpoint a click's data names, or the invoke error to answer instead."""
        checkpoint_id = data.get("checkpoint_id")
        if not isinstance(checkpoint_id, str) or not CHECKPOINT_ID_RE.match(checkpoint_id):
            return _error(400, "This card is not a Signoff checkpoint.")
        try:
            return self.repository.get(checkpoint_id)
        except NotFound:
            return _error(404, "This checkpoint no longer exists.")

    # -- card buttons --------------------------------------------------------------------------

    def _card_action(self, activity: Json, tenant: str, defer: Defer) -> Json:
        verb, data = _action(activity)
        cp = self._checkpoint(data)
        if not isinstance(cp, Checkpoint):
            return cp
        actor = self.directory.actor(activity, tenant)
        if verb == REFRESH_VERB:
            return _card(self.card_for(cp, actor))
        try:
            act = Act(verb)
        except ValueError:
            return _error(400, "This button is not one Signoff knows.")
        try:
            answer = self.click(cp, actor, act, data, defer)
        except Conflict:
            # Past the writers per checkpoint the save loop absorbs (see audit.changes): nothing was
            # recorded; the clicker is told to try again instead of getting a server error.
            _log("teams click", cp.id, act.value, _aad(activity), "busy")
            return _error(503, BUSY)
        _log("teams click", cp.id, act.value, _aad(activity), answer.outcome)
        return _card(answer.card)

    def click(self, cp: Checkpoint, actor: Actor, act: Act, data: Mapping[str, Any], defer: Defer) -> Answer:
        """Apply one click with its inputs."""
        if act is Act.VIEW_DETAILS:
            result = self.decisions.act(cp.id, actor, act)  # a refused peek is audited too
            if not result.ok:
                return self._answer(result.checkpoint, actor, result.message, _refused(result.refusal))
            card = build_card(result.checkpoint)
            return Answer(details_card(card, details_sections(result.checkpoint, card)), "", "details")
        now = self.clock.now()
        try:
            check(cp, actor, act, _INPUT_COMMENT, now)
        except Refused:
            # Refused whatever the inputs say: record it (DecisionService audits it). No comment is
            # passed, so it can only be refused again, for the same reason.
            result = self.decisions.act(cp.id, actor, act)
            return self._answer(result.checkpoint, actor, result.message, _refused(result.refusal))
        given = read_click_inputs(act, data, now=now, comment_required=cp.assessment.gate.comment_required)
        if given.error is not None:
            return self._answer(cp, actor, given.error, "invalid input")  # nothing recorded
        result = self.decisions.act(cp.id, actor, act, comment=given.comment, conditions=given.conditions)
        if not result.ok:
            return self._answer(result.checkpoint, actor, result.message, _refused(result.refusal))
        defer(Followup(cp.id, act.value, result.checkpoint.audit_seq))
        return self._answer(
            result.checkpoint, actor, result.message, "decided" if result.decided else "recorded", ok=True
        )

    def _answer(self, cp: Checkpoint, actor: Actor, message: str, outcome: str, *, ok: bool = False) -> Answer:
        return Answer(self.card_for(cp, actor, message, ok=ok), message, outcome)

    def card_for(self, cp: Checkpoint, actor: Actor, notice: str | None = None, *, ok: bool = True) -> Json:
        """The card as `actor` should see it: their vote noted (and no more vote buttons), `notice`
        on top. On a sensitive checkpoint someone who is neither an approver nor the requester sees
        the notice only: its cards went to approvers' DMs, not to them."""
        if cp.assessment.gate.sensitive and not can_see(cp, actor):
            return message_card(notice or "This checkpoint is not shown to you.", ok=ok)
        mine = next((v for v in cp.votes if actor.person and v.approver == actor.person), None)
        if mine is not None and notice is None:
            notice = f"Your {_WORDS[mine.kind]} ({hhmm(mine.at)}) is recorded."
        view = replace(audience(cp, self.routing), notice=notice, notice_ok=ok, voted=mine is not None)
        return adaptive_card(build_card(cp), view)

    # -- conversations ---------------------------------------------------------------------------

    def _remember(self, activity: Json, tenant: str, service_url: str) -> None:
        """Keep where the bot may now post (or may no longer: removed)."""
        conversation = activity.get("conversation") or {}
        channel_data = activity.get("channelData") or {}
        bot = _str(activity, "recipient", "id")
        removed = str(activity.get("action") or "").startswith("remove") or any(
            isinstance(m, dict) and m.get("id") == bot for m in activity.get("membersRemoved") or []
        )
        kind = str(conversation.get("conversationType") or "personal")
        ids = [base_conversation(str(conversation.get("id") or ""))]
        channel = ((channel_data.get("channel") or {}) if isinstance(channel_data, dict) else {}).get("id")
        if isinstance(channel, str) and channel and channel not in ids:
            ids.append(channel)  # a team install names its General channel; channelCreated the new one
        team = ((channel_data.get("team") or {}) if isinstance(channel_data, dict) else {}).get("id")
        for conversation_id in filter(None, ids):
            self.references.put_reference(
                ConversationReference(
                    conversation_id=conversation_id,
                    service_url=service_url,
                    tenant_id=tenant,
                    kind=kind,
                    team_id=team if isinstance(team, str) else None,
                    user_aad=(_aad(activity) or None) if kind == "personal" else None,
                    active=not removed,
                    updated_at=self.clock.now(),
                )
            )
        _log("teams conversation", "-", str(activity.get("type")), _aad(activity), "removed" if removed else "stored")

    def _message(self, activity: Json, tenant: str, service_url: str, defer: Defer) -> None:
        value = activity.get("value")
        text = HELP
        if isinstance(value, dict) and isinstance(value.get("verb"), str) and "checkpoint_id" in value:
            text = self._submitted(activity, value, tenant, defer)
        conversation, activity_id = _str(activity, "conversation", "id"), str(activity.get("id") or "")
        try:
            self.connector.reply(service_url, conversation, activity_id, {"type": "message", "text": text})
        except (ConnectorError, UntrustedServiceUrl) as exc:
            logger.warning("teams reply not sent", extra={"error": type(exc).__name__})

    def _submitted(self, activity: Json, value: Mapping[str, Any], tenant: str, defer: Defer) -> str:
        """An Action.Submit fallback click (older clients): the same click, answered in text."""
        verb = str(value.get("verb"))
        if verb not in {a.value for a in Act} or verb == Act.VIEW_DETAILS.value:
            return "Open this card in a current Teams client to use it."
        cp = self._checkpoint(value)
        if not isinstance(cp, Checkpoint):
            return str(cp["value"]["message"])
        answer = self.click(cp, self.directory.actor(activity, tenant), Act(verb), value, defer)
        _log("teams click", cp.id, f"{verb} (fallback)", _aad(activity), answer.outcome)
        return answer.message or "Recorded."


# -- reading and answering -------------------------------------------------------------------------


def header(event: Mapping[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == name and values:
            return str(values[0])
    return None


def read_activity(event: Mapping[str, Any]) -> Json:
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else str(raw).encode()
    except (binascii.Error, ValueError):
        raise BadActivity("the body is not valid base64") from None
    if len(body) > MAX_BODY:
        raise BadActivity("the body is too large for an activity")
    try:
        activity = json.loads(body)
    except ValueError:
        raise BadActivity("the body is not JSON") from None
    if not isinstance(activity, dict) or not isinstance(activity.get("type"), str) or not activity.get("id"):
        raise BadActivity("the body is not an activity (type and id are required)")
    return activity


def proxy(status: int, body: Any = None) -> Response:
    response: Response = {"statusCode": status, "headers": {"Content-Type": "application/json"}}
    response["body"] = json.dumps(body) if body is not None else ""
    return response


def invoke_answer(value: Json) -> Response:
    """The HTTP answer to an invoke: its body is the invoke response."""
    return proxy(200, value)


def _card(card: Json) -> Json:
    return {"statusCode": 200, "type": INVOKE_CARD, "value": card}


def _error(status: int, message: str) -> Json:
    code = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 503: "ServiceUnavailable"}.get(status, "Error")
    return {"statusCode": status, "type": INVOKE_ERROR, "value": {"code": code, "message": message}}


def _action(activity: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    value = activity.get("value") or {}
    action = (value.get("action") or {}) if isinstance(value, dict) else {}
    data = action.get("data") if isinstance(action, dict) else None
    return str(action.get("verb") or "") if isinstance(action, dict) else "", data if isinstance(data, dict) else {}


def _str(activity: Mapping[str, Any], outer: str, inner: str) -> str:
    found = activity.get(outer) or {}
    return str(found.get(inner) or "") if isinstance(found, dict) else ""


def _aad(activity: Mapping[str, Any]) -> str:
    return _str(activity, "from", "aadObjectId")


def _refused(refusal: Any) -> str:
    return f"refused {getattr(refusal, 'value', refusal)}"


def _log(message: str, checkpoint_id: str, action: str, aad: str, outcome: str) -> None:
    # Ids and the outcome only: never the token, the payload or what people typed.
    logger.info(message, extra={"checkpoint_id": checkpoint_id, "action": action, "user_aad": aad, "outcome": outcome})


# -- on Lambda -------------------------------------------------------------------------------------


def handle(event: dict[str, Any], app: TeamsApp, defer: Defer) -> Response:
    """One invocation: a request from the connector (follow-up work goes to `defer`), or this
    function's own follow-up."""
    followup = Followup.from_event(event)
    if followup is not None:
        app.followups.run(followup)
        return {"statusCode": 200}
    return app.handle(event, defer)
