"""The sandbox: see the cards Signoff posted to the fake Slack and act on them as any person.

Each click or modal submission becomes a real Slack interactivity payload for the chosen person,
signed with the local signing secret, and goes through the very route and handler Slack's
requests reach (`POST /v1/slack/events`): same verification, same authorization.

JSON API (the page at /sandbox uses it, and so do the end-to-end tests):
  GET  /sandbox/api/state                  people, channels with their messages, ephemerals, views
  GET  /sandbox/api/cards/{checkpoint id}  the messages whose buttons carry that checkpoint (with channel);
                                           ?wait=S answers once there is one (or after S s)
  POST /sandbox/api/click   {person, channel, ts, action_id, value}
  POST /sandbox/api/submit  {person, view_id, values: {block_id: text}}
  POST /sandbox/api/say     {person, channel, text, thread_ts?}: the person writes in a channel (or
                            thread, or D… their DM with the bot); the message's event is signed and
                            delivered like Slack's, so the helpdesk answers it
The state's "tickets" are the issues the fake Jira holds (the helpdesk's hand-offs).

With the Teams bot in the template (SIGNOFF_TEAMS=1) the fake Bot Connector's activities are in
the state too (under "teams": conversation id -> activities as people see them now), and
  POST /sandbox/api/teams/click  {person, conversation, activity_id, verb, data}
sends the card button's invoke (adaptiveCard/action) as that person, with a JWT the fake connector
signs, to `POST /v1/teams/messages`: same verification, same authorization; and
  POST /sandbox/api/teams/token  {activity, audience?, issuer?, expires_in?, endorse?, service_url?}
answers {token}: the fake connector's JWT for an activity built elsewhere (e.g. a test's), tweaked
as asked, to send to `POST /v1/teams/messages` as it likes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from local.fake_jira import FakeJira
from local.fake_slack import (
    FakeSlack,
    block_actions_payload,
    interactivity_body,
    message_event,
    signed_request,
    view_submission_payload,
)
from local.fake_teams import ISSUER, Activity, Conversation, FakeTeams, TeamsUser, bearer_headers, invoke_action
from signoff.domain.routing import LoadedRouting, Person

CARDS_PATH = "/sandbox/api/cards/"
WATCH_INTERVAL_SECONDS = 0.01  # an in-process index read: cheap enough to check often

PAGE = Path(__file__).with_name("sandbox.html")
EVENTS_PATH = "/v1/slack/events"
TEAMS_EVENTS_PATH = "/v1/teams/messages"
# The team every routed Teams channel belongs to locally (the bot is installed in each channel).
TEAMS_TEAM = "19:signoff-local-team@thread.tacv2"

Dispatch = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
Reply = tuple[int, dict[str, str], bytes]


class Sandbox:
    def __init__(
        self,
        slack: FakeSlack,
        routing: LoadedRouting,
        signing_secret: str,
        dispatch: Dispatch,
        *,
        teams: FakeTeams | None = None,
        jira: FakeJira | None = None,
        helpdesk_channels: list[dict[str, str]] | None = None,
    ) -> None:
        self.slack = slack
        self.jira = jira
        self.helpdesk_channels = helpdesk_channels or []  # [{id, name}]: where the page offers to ask
        self.routing = routing
        self.signing_secret = signing_secret
        self.dispatch = dispatch
        self.teams = teams

    def handle(self, method: str, path: str, body: bytes, wait: float = 0.0) -> Reply:
        if method == "GET" and path in ("/sandbox", "/sandbox/"):
            return 200, {"content-type": "text/html; charset=utf-8"}, PAGE.read_bytes()
        if method == "GET" and path == "/sandbox/api/state":
            return _json(200, self.state())
        if method == "GET" and path.startswith(CARDS_PATH):
            value, deadline = path.removeprefix(CARDS_PATH), time.monotonic() + wait
            cards = self.slack.cards_of(value)
            while not cards and time.monotonic() < deadline:  # ?wait=S: until a card is posted
                time.sleep(WATCH_INTERVAL_SECONDS)
                cards = self.slack.cards_of(value)
            return _json(200, {"cards": [asdict(m) for m in cards]})
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _json(400, {"error": "send JSON"})
        if method == "POST" and path == "/sandbox/api/click":
            return self._act(data, self.click)
        if method == "POST" and path == "/sandbox/api/faults":
            return self._act(data, self.fault)
        if method == "POST" and path == "/sandbox/api/submit":
            return self._act(data, self.submit)
        if method == "POST" and path == "/sandbox/api/say":
            return self._act(data, self.say)
        if method == "POST" and path == "/sandbox/api/teams/click" and self.teams is not None:
            return self._act(data, self.teams_click)
        if method == "POST" and path == "/sandbox/api/teams/token" and self.teams is not None:
            return self._act(data, self.teams_token)
        return _json(404, {"error": f"no sandbox route {method} {path}"})

    def _act(self, data: dict[str, Any], action: Callable[..., dict[str, Any]]) -> Reply:
        try:
            return _json(200, action(**data))
        except (TypeError, KeyError, LookupError) as exc:
            return _json(400, {"error": f"bad sandbox request: {exc}"})

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        people = [
            {"id": p.id, "name": p.name, "slack_user": p.slack.user, "roles": self.routing.routing.roles_of(p.id)}
            for p in self.routing.routing.people
            if p.slack
        ]
        channels = {}
        threads = self.slack.threads()
        for channel in self.slack.channels():
            channels[channel] = [
                {**asdict(m), "replies": [asdict(r) for r in threads.get((channel, m.ts), [])]}
                for m in self.slack.messages(channel)
            ]
        state: dict[str, Any] = {
            "people": people,
            "channels": channels,
            "ephemerals": self.slack.ephemerals(),
            "views": self.slack.views(),
        }
        if self.teams is not None:
            state["teams"] = self.teams_state()
        if self.helpdesk_channels:
            state["helpdesk_channels"] = self.helpdesk_channels
        if self.jira is not None:
            state["tickets"] = [
                {"key": key, "fields": issue["fields"], "url": f"{self.jira.url}/browse/{key}"}
                for key, issue in sorted(self.jira.issues.items())
            ]
        return state

    def teams_state(self) -> dict[str, Any]:
        """The fake Teams: its people (Entra ids) and each conversation's activities as seen now."""
        assert self.teams is not None
        fake = self.teams
        conversations = {
            conversation: [
                {**_activity(a), "replies": [_activity(r) for r in fake.replies(conversation, a.id)]}
                for a in fake.activities(conversation)
            ]
            for conversation in fake.conversations()
        }
        people = [
            {"id": p.id, "name": p.name, "aad": p.teams.aad, "roles": self.routing.routing.roles_of(p.id)}
            for p in self.routing.routing.people
            if p.teams
        ]
        return {
            "people": people,
            "conversations": conversations,
            "service_url": fake.service_url,
            "app_id": fake.app_id,
            "tenant": fake.tenant,
            "team": TEAMS_TEAM,
        }

    # -- acting as a person ----------------------------------------------------------------------

    def _person(self, person_id: str) -> Person:
        person = self.routing.routing.person(person_id)
        if person is None or person.slack is None:
            raise LookupError(f"{person_id} has no Slack identity in the directory")
        return person

    def fault(
        self, method: str, error: str, status: int = 200, times: int = 1, retry_after: int | None = None
    ) -> dict[str, Any]:
        """Script the fake Slack: the next `times` calls of `method` fail with `error` (e.g.
        chat.update internal_error 500, chat.postMessage ratelimited 429 with Retry-After)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        self.slack.fail(method, error, status=status, times=times, headers=headers)
        return {"scripted": {"method": method, "error": error, "status": status, "times": times}}

    def click(
        self, person: str, channel: str, ts: str, action_id: str, value: str, deliveries: int = 1
    ) -> dict[str, Any]:
        """`person` clicks; `deliveries` > 1 sends the very same signed request again, as Slack
        does when it retries a delivery."""
        who = self._person(person)
        assert who.slack is not None
        payload = block_actions_payload(
            who.slack.team,
            who.slack.user,
            value,
            action_id.removeprefix("signoff:"),
            channel,
            ts,
            trigger_id=_trigger(),
            response_url=self.slack.response_url,
        )
        if not action_id.startswith("signoff:"):  # another app surface's button (helpdesk:claim, ...)
            payload["actions"][0]["action_id"] = action_id
        clicked = self.slack.find(channel, ts)
        if clicked is not None and clicked.thread_ts:  # a button in a thread: Slack names the thread
            payload["container"]["thread_ts"] = clicked.thread_ts
        return self._send(payload, who, deliveries)

    def say(self, person: str, channel: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        """`person` writes `text`; Slack's event for it goes to Signoff, signed. The helpdesk answers
        in a lazy listener, so the reply shows up in the state a moment later."""
        who = self._person(person)
        assert who.slack is not None
        if not text.strip():
            raise LookupError("say something: the text is empty")
        message = self.slack.say(channel, who.slack.user, text, thread_ts)
        self._events += 1
        event = message_event(who.slack.team, message, event_id=f"EvSandbox{self._events:06d}")
        body = json.dumps(event)
        headers = {
            "content-type": "application/json",
            **{k.lower(): v for k, v in signed_request(body, self.signing_secret, int(time.time())).items()},
        }
        status, _, answer = self.dispatch("POST", EVENTS_PATH, headers, body.encode())
        return {"status": status, "answer": _decode(answer), "channel": channel, "ts": message.ts}

    _events = 0

    def submit(self, person: str, view_id: str, values: dict[str, str | None]) -> dict[str, Any]:
        who = self._person(person)
        assert who.slack is not None
        view = next((v for v in self.slack.views() if v["id"] == view_id), None)
        if view is None:
            raise LookupError(f"no opened view {view_id}")
        payload = view_submission_payload(
            who.slack.team,
            who.slack.user,
            view.get("callback_id", ""),
            view.get("private_metadata", ""),
            values,
            trigger_id=_trigger(),
            view_id=view_id,
        )
        return self._send(payload, who)

    def teams_click(
        self, person: str, conversation: str, activity_id: str, verb: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """`person` clicks the `verb` button (`data`: the button's data with the inputs typed into
        its ShowCard) on the card `activity_id` of a Teams conversation."""
        assert self.teams is not None
        who = self.routing.routing.person(person)
        if who is None or who.teams is None:
            raise LookupError(f"{person} has no Teams identity in the directory")
        user = TeamsUser(who.teams.aad, who.name, who.id)
        kind = "personal" if conversation.startswith("a:") else "channel"
        where = Conversation(conversation, kind, team_id=_team_of(conversation, kind), tenant=self.teams.tenant)
        activity = invoke_action(
            user, where, verb, dict(data or {}), service_url=self.teams.service_url, reply_to=activity_id,
            app_id=self.teams.app_id,
        )  # fmt: skip
        headers = {k.lower(): v for k, v in bearer_headers(self.teams.mint(activity)).items()}
        status, _, answer = self.dispatch("POST", TEAMS_EVENTS_PATH, headers, json.dumps(activity).encode())
        return {"status": status, "answer": _decode(answer), "activity_id": activity["id"]}

    def teams_token(
        self,
        activity: dict[str, Any],
        audience: str | None = None,
        issuer: str | None = None,
        expires_in: float = 3600,
        endorse: bool = True,
        service_url: str | None = None,
    ) -> dict[str, Any]:
        assert self.teams is not None
        token = self.teams.mint(
            activity, audience=audience, issuer=issuer or ISSUER, expires_in=expires_in, endorse=endorse,
            service_url=service_url,
        )  # fmt: skip
        return {"token": token}

    def _send(self, payload: dict[str, Any], who: Person, deliveries: int = 1) -> dict[str, Any]:
        assert who.slack is not None
        views_before = len(self.slack.views())
        ephemerals_before = len(self.slack.ephemerals(who.slack.user))
        body = interactivity_body(payload)
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            **{k.lower(): v for k, v in signed_request(body, self.signing_secret, int(time.time())).items()},
        }
        statuses = [self.dispatch("POST", EVENTS_PATH, headers, body.encode())[:3:2] for _ in range(deliveries)]
        status, answer = statuses[0]
        return {
            "status": status,
            "statuses": [s for s, _ in statuses],
            "answer": _decode(answer),
            "ephemerals": self.slack.ephemerals(who.slack.user)[ephemerals_before:],
            "views": self.slack.views()[views_before:],
        }


def _activity(a: Activity) -> dict[str, Any]:
    return {"id": a.id, "reply_to": a.reply_to, "updates": a.updates, "text": a.text(), "verbs": a.verbs(),
            "card": a.card, "body": a.body}  # fmt: skip


def _team_of(conversation: str, kind: str) -> str | None:
    return TEAMS_TEAM if kind == "channel" else None


def _trigger() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**9}.sandbox"


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _json(status: int, body: Any) -> Reply:
    return status, {"content-type": "application/json"}, json.dumps(body, default=str).encode()
