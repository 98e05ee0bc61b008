"""The sandbox: see the cards Signoff posted to the fake Slack and act on them as any person.

Each click or modal submission becomes a real Slack interactivity payload for the chosen person,
signed with the local signing secret, and goes through the very route and handler Slack's
requests reach (`POST /v1/slack/events`): same verification, same authorization.

JSON API (the page at /sandbox uses it, and so do the end-to-end tests):
  GET  /sandbox/api/state                  people, channels with their messages, ephemerals, views
  POST /sandbox/api/click   {person, channel, ts, action_id, value}
  POST /sandbox/api/submit  {person, view_id, values: {block_id: text}}
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from local.fake_slack import (
    FakeSlack,
    block_actions_payload,
    interactivity_body,
    signed_request,
    view_submission_payload,
)
from signoff.routing import LoadedRouting, Person

PAGE = Path(__file__).with_name("sandbox.html")
EVENTS_PATH = "/v1/slack/events"

Dispatch = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
Reply = tuple[int, dict[str, str], bytes]


class Sandbox:
    def __init__(self, slack: FakeSlack, routing: LoadedRouting, signing_secret: str, dispatch: Dispatch) -> None:
        self.slack = slack
        self.routing = routing
        self.signing_secret = signing_secret
        self.dispatch = dispatch

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        if method == "GET" and path in ("/sandbox", "/sandbox/"):
            return 200, {"content-type": "text/html; charset=utf-8"}, PAGE.read_bytes()
        if method == "GET" and path == "/sandbox/api/state":
            return _json(200, self.state())
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _json(400, {"error": "send JSON"})
        if method == "POST" and path == "/sandbox/api/click":
            return self._act(data, self.click)
        if method == "POST" and path == "/sandbox/api/submit":
            return self._act(data, self.submit)
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
        for channel in self.slack.channels():
            channels[channel] = [
                {**asdict(m), "replies": [asdict(r) for r in self.slack.replies(channel, m.ts)]}
                for m in self.slack.messages(channel)
            ]
        return {
            "people": people,
            "channels": channels,
            "ephemerals": self.slack.ephemerals(),
            "views": self.slack.views(),
        }

    # -- acting as a person ----------------------------------------------------------------------

    def _person(self, person_id: str) -> Person:
        person = self.routing.routing.person(person_id)
        if person is None or person.slack is None:
            raise LookupError(f"{person_id} has no Slack identity in the directory")
        return person

    def click(self, person: str, channel: str, ts: str, action_id: str, value: str) -> dict[str, Any]:
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
        return self._send(payload, who)

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

    def _send(self, payload: dict[str, Any], who: Person) -> dict[str, Any]:
        assert who.slack is not None
        views_before = len(self.slack.views())
        ephemerals_before = len(self.slack.ephemerals(who.slack.user))
        body = interactivity_body(payload)
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            **{k.lower(): v for k, v in signed_request(body, self.signing_secret, int(time.time())).items()},
        }
        status, _, answer = self.dispatch("POST", EVENTS_PATH, headers, body.encode())
        return {
            "status": status,
            "answer": _decode(answer),
            "ephemerals": self.slack.ephemerals(who.slack.user)[ephemerals_before:],
            "views": self.slack.views()[views_before:],
        }


def _trigger() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**9}.sandbox"


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _json(status: int, body: Any) -> Reply:
    return status, {"content-type": "application/json"}, json.dumps(body, default=str).encode()
