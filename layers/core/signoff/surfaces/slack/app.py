"""The bolt app behind POST /v1/slack/events: button clicks, modal submissions and `/signoff`.

Slack wants an answer within 3 s, and a modal can only be opened with a trigger_id that dies in
3 s. So the ack path does only what must happen now: verify the signature (bolt), map the clicker
to a directory person, record the act through DecisionService (which authorizes, votes once,
decides N of M and audits refusals), open the modal if the act needs one, and ack. Everything else
(the ephemeral answer, the card updates, the thread question, the escalation notice) runs in bolt
lazy listeners: on Lambda they are a second, asynchronous invocation of this function with the same
signed request and nothing else, so they read the current checkpoint and work from that alone
(re-rendering a card twice is harmless).

Buttons carry the checkpoint id only; anything a click claims beyond that is re-checked here."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.aws_lambda import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.kwargs_injection.utils import build_required_kwargs
from slack_bolt.lazy_listener import LazyListenerRunner
from slack_bolt.util.utils import get_arg_names_of_callable
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.audit.events import EventType
from signoff.domain.acts import Act, Actor, Refusal, Refused, can_see, check
from signoff.domain.cards import build_card, hhmm
from signoff.domain.errors import Conflict, NotFound
from signoff.domain.models import CHECKPOINT_ID_RE, Checkpoint, Status, VoteKind
from signoff.domain.routing import LoadedRouting
from signoff.observability import logger
from signoff.ports import Chat, CheckpointRepository
from signoff.surfaces.slack import blocks
from signoff.surfaces.slack.blocks import Form
from signoff.surfaces.slack.chat import SlackChat, quiet_logger
from signoff.surfaces.slack.forms import ACTS, TEXT_FIELD, read_form, value
from signoff.surfaces.slack.identity import SlackDirectory, error_code
from signoff.surfaces.slack.signing import RotatingRequestVerification
from signoff.usecases.decisions import ActResult, DecisionService
from signoff.usecases.followups import Followups

if TYPE_CHECKING:
    from signoff.surfaces.slack.helpdesk import HelpdeskListeners
    from signoff.surfaces.slack.helpdesk_approvals import HelpdeskApprovalListeners

ACTION_ID = re.compile(r"^signoff:(?P<act>[a-z_]{1,40})$")
FORM_ID = re.compile(r"^signoff_form:")
COMMAND = "/signoff"
USAGE = "Usage: `/signoff <checkpoint-id>`: the checkpoint's status, if you approve it or asked for it."
BOLT_LOGGER = "signoff.surfaces.slack.bolt"
UNKNOWN_WORKSPACE = "signoff_unknown_workspace"  # bolt context key set by authorize
BUSY = "This checkpoint is very busy right now and nothing was recorded: please try again."
ACK_TIMEOUT_SECONDS = 2  # views.open must finish inside Slack's 3 s, with time left to answer
# check() is called before a form is shown; the form asks for the comment, so stand one in.
_FORM_COMMENT = "(asked for in the form)"
_VOTES = {Act.APPROVE: VoteKind.APPROVE, Act.APPROVE_WITH_CONDITIONS: VoteKind.APPROVE}
_VOTES |= {Act.DENY: VoteKind.DENY, Act.VETO: VoteKind.DENY}
_WORDS = {Act.APPROVE: "approval", Act.APPROVE_WITH_CONDITIONS: "approval", Act.DENY: "denial", Act.VETO: "veto"}


# -- reading payloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    """The clicker as Slack's signature vouches for them."""

    enterprise: str | None
    team: str | None
    user: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Who:
        """From a block_actions or view_submission payload."""
        user = body.get("user") or {}
        team = (body.get("team") or {}).get("id") or user.get("team_id")
        return cls(enterprise=(body.get("enterprise") or {}).get("id"), team=team, user=str(user.get("id", "")))


@dataclass(frozen=True)
class Click:
    checkpoint_id: str
    act: Act
    who: Who
    channel: str | None  # where the card is (DM or channel): the ephemeral answer goes there
    trigger_id: str | None


def read_click(body: dict[str, Any]) -> Click | None:
    """One `signoff:<act>` button whose value is a checkpoint id; None for anything else."""
    actions = body.get("actions") or []
    if len(actions) != 1:
        return None
    match = ACTION_ID.match(str(actions[0].get("action_id", "")))
    checkpoint_id = str(actions[0].get("value", ""))
    if match is None or not CHECKPOINT_ID_RE.match(checkpoint_id):
        return None
    try:
        act = Act(match["act"])
    except ValueError:
        return None
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
    return Click(checkpoint_id, act, Who.of(body), channel, body.get("trigger_id"))


def form_for(cp: Checkpoint, act: Act) -> Form | None:
    """The modal an act needs first, if any."""
    if act is Act.APPROVE:
        return Form.COMMENT if cp.assessment.gate.comment_required else None
    return {
        Act.DENY: Form.DENY,
        Act.APPROVE_WITH_CONDITIONS: Form.CONDITIONS,
        Act.REQUEST_INFO: Form.INFO,
        Act.VIEW_DETAILS: Form.DETAILS,
    }.get(act)


def form_view(form: Form, cp: Checkpoint) -> blocks.View:
    card = build_card(cp)
    match form:
        case Form.DENY:
            return blocks.deny_view(card)
        case Form.COMMENT:
            return blocks.comment_view(card)
        case Form.CONDITIONS:
            return blocks.conditions_view(card, comment_required=cp.assessment.gate.comment_required)
        case Form.INFO:
            return blocks.info_view(card)
        case Form.DETAILS:
            return blocks.details_view(cp)


def read_form_id(view: dict[str, Any]) -> tuple[Form, str] | None:
    """A submitted Signoff form that records an act, and its checkpoint id; None for anything else."""
    try:
        form = Form(str(view.get("callback_id", "")))
    except ValueError:
        return None
    checkpoint_id = str(view.get("private_metadata", ""))
    return (form, checkpoint_id) if form in ACTS and CHECKPOINT_ID_RE.match(checkpoint_id) else None


# -- what the clicker is told --------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    text: str | None  # the ephemeral answer; None when there is nothing to say (a form opened)
    changed: bool  # the click changed the checkpoint: re-render its cards


def receipt(cp: Checkpoint, actor: Actor, act: Act, now: datetime) -> Receipt:
    """What a click did, worked out from the checkpoint as it is now (the lazy half of a click runs
    in another invocation and only has the request): the clicker's recorded vote, else the rule
    that refuses them (the refusal itself was audited in the ack path), else nothing to say."""
    mine = next((v for v in cp.votes if actor.person and v.approver == actor.person), None)
    if mine is not None and act in _VOTES and mine.kind is _VOTES[act]:
        approvals = sum(1 for v in cp.votes if v.kind is VoteKind.APPROVE)
        if cp.status is Status.PENDING:
            state = f"{approvals} of {cp.assessment.gate.approvals_required} approvals so far."
        else:
            state = f"The checkpoint is {cp.status.value.lower()}."
        return Receipt(f"Your {_WORDS[act]} ({hhmm(mine.at)}) is recorded. {state}", changed=True)
    try:
        check(cp, actor, act, _FORM_COMMENT, now)
    except Refused as refused:
        return Receipt(refused.message, changed=False)
    if act is Act.ESCALATE and cp.escalated:
        return Receipt(f"Escalated to {cp.assessment.gate.escalation_route or 'the escalation route'}.", changed=True)
    return Receipt(None, changed=False)


# -- listeners -----------------------------------------------------------------------------------


class Listeners:
    """The app's behaviour; build_app wires these to bolt."""

    def __init__(
        self,
        *,
        decisions: DecisionService,
        routing: LoadedRouting,
        repository: CheckpointRepository,
        directory: SlackDirectory,
        chats: Sequence[Chat],
    ) -> None:
        self.decisions = decisions
        self.routing = routing
        self.repo = repository
        self.directory = directory
        self.chats = chats
        # Thread questions and escalation notices: the same on every surface (Teams uses it too).
        self.followups = Followups(repository, decisions.clock, routing, chats)

    def actor(self, who: Who) -> Actor:
        return self.directory.actor(enterprise=who.enterprise, team=who.team, user=who.user)

    def refuse_stranger(self, body: dict[str, Any]) -> None:
        """Audit a click from an unknown workspace on the checkpoint it names (no listener runs)."""
        click = read_click(body)
        who = click.who if click else Who.of(body)
        logger.warning("slack request from an unknown workspace", extra={"team_id": who.team})
        if click is None:
            return
        stranger = Actor(
            surface="slack",
            handle=f"slack:{who.enterprise or who.team}/{who.user}",
            person=None,
            name=who.user,
            workspace_known=False,
        )
        try:
            self.decisions.act(click.checkpoint_id, stranger, click.act)
        except NotFound:
            pass
        _log("slack click", click.checkpoint_id, click.act.value, who.user, "refused unknown_workspace")

    # -- buttons -----------------------------------------------------------------------------------

    def click(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        click = read_click(body)
        if click is None:
            ack()
            return
        actor = self.actor(click.who)
        try:
            outcome = self._click(click, actor, client)
        except Conflict:
            # Past the writers per checkpoint the save loop absorbs (see audit.changes): nothing was
            # recorded, so say so rather than fail the request.
            ack()
            self._ephemeral(client, click, BUSY)
            _log("slack click", click.checkpoint_id, click.act.value, click.who.user, "busy")
            return
        ack()
        _log("slack click", click.checkpoint_id, click.act.value, click.who.user, outcome)

    def _click(self, click: Click, actor: Actor, client: WebClient) -> str:
        try:
            cp = self.repo.get(click.checkpoint_id)
        except NotFound:
            return "not_found"
        form = form_for(cp, click.act)
        if form is None:
            return _outcome(self.decisions.act(cp.id, actor, click.act))
        if form is Form.DETAILS:
            result = self.decisions.act(cp.id, actor, Act.VIEW_DETAILS)  # a refused peek is audited too
            if not result.ok:
                return _outcome(result)
            cp = result.checkpoint
        else:
            try:
                check(cp, actor, click.act, _FORM_COMMENT, self.decisions.clock.now())
            except Refused:
                # The form would be refused anyway: record the refusal (DecisionService audits it)
                # instead of showing it. No comment is passed, so this can only ever be refused.
                return _outcome(self.decisions.act(cp.id, actor, click.act))
        self._open(client, click, form_view(form, cp))
        return f"form {form.value}"

    def _open(self, client: WebClient, click: Click, view: blocks.View) -> None:
        # A client of its own: no waiting out a 429 here, the trigger would be dead by then.
        fast = WebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=ACK_TIMEOUT_SECONDS,
            retry_handlers=[],
            logger=client.logger,
        )
        try:
            fast.views_open(trigger_id=click.trigger_id or "", view=view)
        except (SlackApiError, OSError) as exc:
            code = error_code(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            _log("slack modal not opened", click.checkpoint_id, click.act.value, click.who.user, code)

    def after_click(self, body: dict[str, Any], client: WebClient) -> None:
        """Lazy: tell the clicker what happened, refresh the cards, tell the escalation route."""
        click = read_click(body)
        if click is None:
            return
        try:
            cp = self.repo.get(click.checkpoint_id)
        except NotFound:
            self._ephemeral(client, click, "This checkpoint no longer exists.")
            return
        actor = self.actor(click.who)
        result = receipt(cp, actor, click.act, self.decisions.clock.now())
        if result.text:
            self._ephemeral(client, click, result.text)
        if result.changed:
            if click.act is Act.ESCALATE:
                cp = self.followups.tell_escalation_route(cp, actor.name)
            self.refresh(cp)

    def _ephemeral(self, client: WebClient, click: Click, text: str) -> None:
        if click.channel is None:
            return
        try:
            client.chat_postEphemeral(channel=click.channel, user=click.who.user, text=blocks.escape(text))
        except SlackApiError as exc:
            _log("slack ephemeral not sent", click.checkpoint_id, click.act.value, click.who.user, error_code(exc))

    # -- forms -------------------------------------------------------------------------------------

    def submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        who = Who.of(body)
        found = read_form_id(view)
        if found is None:
            ack(response_action="update", view=blocks.result_view("This form is no longer valid."))
            return
        form, checkpoint_id = found
        try:
            cp = self.repo.get(checkpoint_id)
        except NotFound:
            ack(response_action="update", view=blocks.result_view("This checkpoint no longer exists."))
            return
        values = (view.get("state") or {}).get("values") or {}
        gate = cp.assessment.gate
        form_data = read_form(form, values, now=self.decisions.clock.now(), comment_required=gate.comment_required)
        if form_data.errors:
            ack(response_action="errors", errors=form_data.errors)
            _log("slack form", checkpoint_id, form_data.act.value, who.user, "invalid input")
            return
        try:
            result = self.decisions.act(
                cp.id, self.actor(who), form_data.act, comment=form_data.comment, conditions=form_data.conditions
            )
        except Conflict:
            ack(response_action="update", view=blocks.result_view(BUSY))
            _log("slack form", checkpoint_id, form_data.act.value, who.user, "busy")
            return
        if result.ok:
            ack()  # closes the modal; the card shows the vote
        elif result.refusal in (Refusal.COMMENT_REQUIRED, Refusal.REASON_REQUIRED):
            ack(response_action="errors", errors={TEXT_FIELD[form].value: result.message})
        else:
            ack(response_action="update", view=blocks.result_view(result.message))
        _log("slack form", checkpoint_id, form_data.act.value, who.user, _outcome(result))

    def after_submit(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Lazy: refresh the cards after a vote; put a question to the requester in the thread."""
        found = read_form_id(view)
        if found is None:
            return
        form, checkpoint_id = found
        try:
            cp = self.repo.get(checkpoint_id)
        except NotFound:
            return
        actor = self.actor(Who.of(body))
        if form is Form.INFO:
            question = value((view.get("state") or {}).get("values") or {}, TEXT_FIELD[form])
            if question and self._asked(cp, actor, question):
                self.followups.ask_requester(cp, actor.name, question)
        elif receipt(cp, actor, ACTS[form], self.decisions.clock.now()).changed:
            self.refresh(cp)

    def _asked(self, cp: Checkpoint, actor: Actor, question: str) -> bool:
        """The question was recorded (the ack path's act was not refused)."""
        return any(
            e.type is EventType.INFO_REQUESTED and e.actor == actor.person and e.data.get("comment") == question
            for e in self.repo.events(cp.id)
        )

    def command(self, ack: Ack, command: dict[str, Any]) -> None:
        text = str(command.get("text") or "").strip()
        if not text or text.lower() == "help":
            ack(USAGE, response_type="ephemeral")
            return
        checkpoint_id = text.split()[0]
        who = Who(command.get("enterprise_id"), command.get("team_id"), str(command.get("user_id", "")))
        actor = self.actor(who)
        cp: Checkpoint | None = None
        if CHECKPOINT_ID_RE.match(checkpoint_id):
            try:
                cp = self.repo.get(checkpoint_id)
            except NotFound:
                cp = None
        if cp is None or not can_see(cp, actor):
            # One answer for "no such id" and "not yours": ids of others' checkpoints stay private.
            ack(f"No checkpoint `{blocks.escape(checkpoint_id[:40])}` that you can see.", response_type="ephemeral")
            _log("slack command", checkpoint_id[:40], "status", who.user, "not shown")
            return
        card = build_card(cp)
        ack(
            text=blocks.fallback_text(card),
            blocks=blocks.card_blocks(card, interactive=False),
            response_type="ephemeral",
        )
        _log("slack command", cp.id, "status", who.user, cp.status.value.lower())

    # -- cards -------------------------------------------------------------------------------------

    def refresh(self, cp: Checkpoint) -> None:
        """Re-render every card and escalation notice of the checkpoint from its current state."""
        self.followups.refresh(cp)


def _outcome(result: ActResult) -> str:
    if result.refusal is not None:
        return f"refused {result.refusal.value}"
    return "decided" if result.decided else "recorded"


def _log(message: str, checkpoint_id: str, action: str, user_id: str, outcome: str) -> None:
    # Ids and the outcome only: never the payload, a token or what people typed.
    logger.info(
        message, extra={"checkpoint_id": checkpoint_id, "action": action, "user_id": user_id, "outcome": outcome}
    )


# -- the app -------------------------------------------------------------------------------------


def build_app(
    *,
    signing_secret: str | Callable[[], Sequence[str]],
    client: WebClient,
    decisions: DecisionService,
    routing: LoadedRouting,
    repository: CheckpointRepository,
    directory: SlackDirectory | None = None,
    chats: Sequence[Chat] | None = None,
    bot_token: Callable[[], str] | None = None,
    teams: Collection[str] | None = None,
    helpdesk: HelpdeskListeners | None = None,
    helpdesk_approvals: HelpdeskApprovalListeners | None = None,
) -> App:
    """The Slack app. `client` is the Web API client (its base_url, retries and token);
    `directory` maps clickers to people (default: on `client`, with its 5-minute group cache);
    `chats` are the surfaces whose cards a click refreshes (default: Slack on `client`);
    `bot_token` is read per request (default: the client's); `teams` are the workspaces or
    Enterprise Grid orgs whose requests are served (default: those named in the routing file);
    `signing_secret` is the secret, or a callable giving every secret accepted now (rotation)."""
    secrets = signing_secret if callable(signing_secret) else (lambda: [signing_secret])
    directory = directory or SlackDirectory(routing, client)
    chats = list(chats) if chats is not None else [SlackChat(client, routing, directory)]
    token = bot_token or (lambda: client.token or "")
    allowed = frozenset(teams) if teams is not None else frozenset(
        p.slack.team for p in routing.routing.people if p.slack
    )  # fmt: skip

    def authorize(enterprise_id: str | None, team_id: str | None, context: BoltContext) -> AuthorizeResult:
        # Given to bolt so no auth.test call sits in the 3-second ack path. A workspace that is not
        # ours gets no token, even with a valid signature, and is marked for `stranger_gate` below:
        # refusing here instead would make bolt call Slack back ("reinstall this app").
        if not ({enterprise_id, team_id} & allowed):
            context[UNKNOWN_WORKSPACE] = True
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id)
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token())

    app = App(
        # Bolt configures a logger named after the app on every request: not "signoff", which is
        # the Powertools logger (its level would be overwritten).
        name=BOLT_LOGGER,
        # Bolt logs whole request bodies at INFO (e.g. on a bad signature) and at DEBUG.
        logger=quiet_logger(BOLT_LOGGER, logging.WARNING),
        # Signatures are checked by RotatingRequestVerification, first, against every accepted secret.
        request_verification_enabled=False,
        before_authorize=RotatingRequestVerification(secrets),
        # Token-less: the token comes from authorize, per request.
        client=WebClient(
            base_url=client.base_url, timeout=client.timeout, retry_handlers=client.retry_handlers, logger=client.logger
        ),
        authorize=authorize,
        process_before_response=True,
    )
    listeners = Listeners(decisions=decisions, routing=routing, repository=repository, directory=directory, chats=chats)

    @app.middleware
    def stranger_gate(body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        """A request from a workspace that is not ours runs no listener and calls Slack for
        nothing: a click on a checkpoint is audited as an unknown-workspace refusal (ids only)."""
        if not context.get(UNKNOWN_WORKSPACE):
            return next()
        listeners.refuse_stranger(body)
        return BoltResponse(status=200, body="")

    # Bolt injects arguments by parameter name and runs a lazy listener by function name: plain
    # functions with stable names, not bound methods.
    def on_click(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        listeners.click(ack, body, client)

    def after_click(body: dict[str, Any], client: WebClient) -> None:
        listeners.after_click(body, client)

    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        listeners.submit(ack, body, view)

    def after_submit(body: dict[str, Any], view: dict[str, Any]) -> None:
        listeners.after_submit(body, view)

    def on_command(ack: Ack, command: dict[str, Any]) -> None:
        listeners.command(ack, command)

    app.action(re.compile(r"^signoff:"))(ack=on_click, lazy=[after_click])
    app.view(FORM_ID)(ack=on_submit, lazy=[after_submit])
    app.command(COMMAND)(on_command)
    if helpdesk is not None:  # the helpdesk's events, /ask-it and buttons (signoff.surfaces.slack.helpdesk)
        # Imported here: a deployment without the helpdesk never loads its router.
        from signoff.surfaces.slack.helpdesk import register as register_helpdesk

        if helpdesk_approvals is not None:  # first: the helpdesk's own listener takes every helpdesk: action
            from signoff.surfaces.slack.helpdesk_approvals import register as register_approvals

            register_approvals(app, helpdesk_approvals)
        register_helpdesk(app, helpdesk)
    return app


class InlineLazyListenerRunner(LazyListenerRunner):
    """Runs lazy listeners right away in the calling thread, and lets their errors through (tests,
    the local stack). On Lambda, SlackRequestHandler re-invokes the function instead."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.logger = log or quiet_logger(BOLT_LOGGER, logging.WARNING)

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        kwargs = build_required_kwargs(
            logger=self.logger,
            required_arg_names=get_arg_names_of_callable(function),
            request=request,
            response=None,
            this_func=function,
        )
        function(**kwargs)


def request_handler(app: App, lazy_runner: LazyListenerRunner | None = None) -> SlackRequestHandler:
    """The API Gateway adapter for `app`. SlackRequestHandler installs bolt's Lambda lazy runner
    (an asynchronous self-invocation); pass `lazy_runner` to run lazy work some other way."""
    handler = SlackRequestHandler(app)
    if lazy_runner is not None:
        app.listener_runner.lazy_listener_runner = lazy_runner
    return handler


def handle(event: dict[str, Any], context: Any, handler: SlackRequestHandler) -> dict[str, Any]:
    """One API Gateway (REST proxy) event: a Slack request, or bolt's lazy re-invocation of one."""
    adapter = handler
    response: dict[str, Any] = adapter.handle(event, context)  # type: ignore[no-untyped-call]  # bolt's adapter is untyped
    status = int(response.get("statusCode", 0))
    if status == 401:
        # Bad signature or a timestamp over 5 minutes off (a replay, or a lazy run delayed too long).
        logger.warning("slack request rejected", extra={"status": status})
    elif status >= 400:
        logger.warning("slack request failed", extra={"status": status})
    return response
