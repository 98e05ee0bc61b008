"""An access request end to end on the local stack: an employee asks in #it-help, the bot answers in
a DM with its boundary and the form, the modal refuses a wrong answer beside its field, the request
becomes a Signoff checkpoint routed to the manager the form names, the requester's own click is
refused, the manager approves in Slack, the system owners approve the next step, and the
organisation's automation receives one signed webhook; the requester's thread shows each step.

Everything travels as Slack would send it (signed Events API and interactivity requests) to the
stack's Slack route; the automation is a receiver on loopback, named in a copy of helpdesk.yaml
the stack is synthesized with (SIGNOFF_HELPDESK)."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.fake_slack import block_actions_payload, interactivity_body, signed_request, view_submission_payload
from signoff.adapters.webhook import verify
from signoff.audit.events import EventType, verify_chain
from signoff.audit.records import event_from_record
from tests.e2e.conftest import (
    FAST_POLICY,
    ROOT,
    SIGNING_SECRET,
    LocalSignoff,
    eventually,
    start_local,
    synthesized,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("helpdesk-approval")]

TEAM = "T0SIGNOFF"
ALICE, GRACE = "U0ALICE", "U0GRACE"
ALICE_DM = "D0ALICE"
CHECKPOINT = re.compile(r"cp_[0-9a-z]{26}")


@dataclass
class Automation:
    """The organisation's automation: every request it receives, headers and raw body."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _serve(automation: Automation) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with automation.lock:
                automation.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@dataclass
class Stack:
    signoff: LocalSignoff
    automation: Automation
    key: bytes

    def received(self, class_name: str) -> list[tuple[dict[str, str], bytes]]:
        """What the automation received for requests of one class (the tests share the stack)."""
        with self.automation.lock:
            return [(h, b) for h, b in self.automation.received if json.loads(b)["class"] == class_name]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    automation = Automation()
    server = _serve(automation)
    folder = tmp_path_factory.mktemp("helpdesk")
    config = yaml.safe_load((ROOT / "helpdesk.yaml").read_text())
    hooks = (("access_request", "access-grant"), ("policy_exception", "policy-exception"), ("software_request", "sw"))
    for name, hook in hooks:
        config["classes"][name]["approval"]["executor"] = f"http://127.0.0.1:{server.server_address[1]}/hooks/{hook}"
    (folder / "helpdesk.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # The fast policy, with the gate a person clicks: a medium-risk request with a low score waits
    # minutes for a person (the fast policy's own 3 s fail-open gate would approve it by itself).
    policy = yaml.safe_load(FAST_POLICY.read_text())
    policy["matrix"]["medium"]["low"] = "review"
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    variant = {"SIGNOFF_HELPDESK": str(folder / "helpdesk.yaml"), "SIGNOFF_POLICY": str(folder / "policy.yaml")}
    try:
        for signoff in start_local(tmp_path_factory, **variant):
            outdir = synthesized(tmp_path_factory, {"SIGNOFF_EXAMPLE": "1", **variant})
            yield Stack(signoff, automation, _webhook_key(outdir))
    finally:
        server.shutdown()
        server.server_close()


def _webhook_key(outdir: Path) -> bytes:
    """The local stack's HMAC key: the generated value it gives the webhook secret of the template."""
    template = json.loads((outdir / "Signoff.template.json").read_text())
    for logical_id, resource in template["Resources"].items():
        generated = resource.get("Properties", {}).get("GenerateSecretString") or {}
        if generated.get("GenerateStringKey") == "hmac_key":
            return f"generated-{logical_id.lower()}".encode()
    raise AssertionError("no webhook secret in the template")


# -- Slack, as Slack sends it ----------------------------------------------------------------------


def _post(signoff: LocalSignoff, body: str, content_type: str) -> Any:
    headers = {"content-type": content_type, **signed_request(body, SIGNING_SECRET, int(time.time()))}
    reply = signoff.call("POST", "/v1/slack/events", body.encode(), headers)
    assert reply.status == 200, reply.body
    return reply.body


def _message(signoff: LocalSignoff, user: str, text: str, ts: str) -> None:
    event = {"type": "message", "channel": "C01ITHELP", "channel_type": "channel", "user": user, "text": text, "ts": ts}
    envelope = {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0SIGNOFF",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{ts.replace('.', '')}",
        "event_time": int(float(ts)),
    }
    _post(signoff, json.dumps(envelope), "application/json")


def _click(signoff: LocalSignoff, user: str, message: dict[str, Any], action_id: str, value: str) -> Any:
    payload = block_actions_payload(TEAM, user, value, "x", ALICE_DM, message["ts"], trigger_id=f"trg-{time.time()}")
    payload["actions"][0]["action_id"] = action_id
    return _post(signoff, interactivity_body(payload), "application/x-www-form-urlencoded")


def _submit(signoff: LocalSignoff, user: str, view: dict[str, Any], answers: dict[str, str]) -> Any:
    payload = view_submission_payload(
        TEAM, user, view["callback_id"], view["private_metadata"], {}, trigger_id="trg", view_id=view["id"]
    )
    state: dict[str, Any] = {}
    for block in (b for b in view["blocks"] if b["type"] == "input"):
        name, kind = block["block_id"], block["element"]["type"]
        value = answers.get(name)
        if kind == "users_select":
            state[name] = {name: {"type": kind, "selected_user": value}}
        elif kind == "static_select":
            state[name] = {name: {"type": kind, "selected_option": {"value": value} if value else None}}
        else:
            state[name] = {name: {"type": kind, "value": value}}
    payload["view"]["state"] = {"values": state}
    return _post(signoff, interactivity_body(payload), "application/x-www-form-urlencoded")


# -- what Alice sees -------------------------------------------------------------------------------


def _bot_dm(signoff: LocalSignoff, words: str) -> dict[str, Any] | None:
    """The bot's reply in Alice's DM offering the form for the request that says `words`."""
    for message in signoff.slack()["channels"].get(ALICE_DM, []):
        text = json.dumps(message["blocks"])
        if "helpdesk:request" in text and words in text:
            return dict(message)
    return None


def _thread(signoff: LocalSignoff, ts: str, channel: str = ALICE_DM) -> list[str]:
    for message in signoff.slack()["channels"].get(channel, []):
        if message["ts"] == ts:
            return [json.dumps(r["blocks"]) + r["text"] for r in message["replies"]]
    return []


def _said(signoff: LocalSignoff, ts: str, words: str, channel: str = ALICE_DM) -> str | None:
    return next((text for text in _thread(signoff, ts, channel) if words in text), None)


def test_an_access_request_becomes_a_checkpoint_the_manager_approves_and_the_automation_runs_once(
    stack: Stack,
) -> None:
    signoff = stack.signoff
    # Given Alice asks for access in #it-help
    _message(signoff, ALICE, "please grant me access to the sales dashboard", f"{int(time.time())}.000100")
    bot = eventually(lambda: _bot_dm(signoff, "Access request"))
    assert "I can draft this request" in json.dumps(bot["blocks"]) and "must approve it" in json.dumps(bot["blocks"])
    buttons = [e for b in bot["blocks"] if b["type"] == "actions" for e in b["elements"]]
    button = next(e for e in buttons if e["action_id"] == "helpdesk:request")
    conversation = button["value"]

    # Someone else's click on her button opens nothing
    views_before = len(signoff.slack()["views"])
    _click(signoff, GRACE, bot, "helpdesk:request", conversation)
    told = eventually(lambda: [e for e in signoff.slack()["ephemerals"] if e.get("user") == GRACE])
    assert "Only the person who asked" in json.dumps(told) and len(signoff.slack()["views"]) == views_before

    # When she opens the form: a modal with the class's fields
    _click(signoff, ALICE, bot, "helpdesk:request", conversation)
    view = eventually(lambda: next(iter(signoff.slack()["views"][views_before:]), None))
    assert view["callback_id"] == "helpdesk:approval" and view["private_metadata"] == conversation
    inputs = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs == {
        "system": "static_select",
        "role": "plain_text_input",
        "duration": "plain_text_input",
        "justification": "plain_text_input",
        "manager": "users_select",
    }

    # Naming herself as the approver is refused beside the field, and nothing is created
    answers = {
        "system": "service-api",
        "role": "viewer",
        "duration": "30 days",
        "justification": "quarterly reporting",
        "manager": ALICE,
    }
    refused = _submit(signoff, ALICE, view, answers)
    assert refused["response_action"] == "errors" and list(refused["errors"]) == ["manager"]
    assert "cannot approve your own request" in refused["errors"]["manager"]

    # Then with her manager: step 1 becomes a checkpoint, said in her thread
    assert _submit(signoff, ALICE, view, {**answers, "manager": GRACE}) in (None, "", {})
    said = eventually(lambda: _said(signoff, bot["ts"], "Step 1 of 2: Grace Hopper decides"))
    [first] = set(CHECKPOINT.findall(said))
    checkpoint = signoff.checkpoint(first)
    assert checkpoint["status"] == "PENDING" and checkpoint["caller"] == "signoff:helpdesk"
    assert checkpoint["request"]["requester"]["id"] == "alice@example.com"
    assert checkpoint["assessment"]["gate"]["kind"] == "hard"
    assert "grace@example.com" in checkpoint["approvers"] and "alice@example.com" not in checkpoint["approvers"]

    # The requester's own click is refused; the manager's approves it in Slack
    eventually(lambda: signoff.cards(first))
    own = signoff.act("alice@example.com", first, "approve")
    assert own["ephemerals"] and signoff.checkpoint(first)["status"] == "PENDING"
    assert any(e["type"] == "refused" and e["data"]["refusal"] == "requester" for e in signoff.events(first))
    signoff.approve("grace@example.com", first)
    assert eventually(lambda: _said(signoff, bot["ts"], "Step 1 of 2 approved by Grace Hopper"))

    # Step 2 exists only now: the system's owners decide, and one of them approves
    said = eventually(lambda: _said(signoff, bot["ts"], "Step 2 of 2: the owners of service-api decide"))
    [second] = set(CHECKPOINT.findall(said))
    assert second != first and stack.received("access_request") == []
    assert "bob@example.com" in signoff.checkpoint(second)["approvers"]
    eventually(lambda: signoff.cards(second))
    signoff.approve("bob@example.com", second)

    # The automation receives one signed request, and the thread says it is done
    assert eventually(lambda: _said(signoff, bot["ts"], "Done: the automation accepted the request"))
    [(headers, body)] = stack.received("access_request")
    timestamp = int(headers["x-signoff-timestamp"])
    assert verify(stack.key, timestamp, body, headers["x-signoff-signature"], now=time.time())
    sent = json.loads(body)
    assert sent["conversation_id"] == conversation and sent["requester"] == "alice@example.com"
    assert [s["checkpoint_id"] for s in sent["steps"]] == [first, second]
    assert all(s["status"] == "APPROVED" for s in sent["steps"])
    for checkpoint_id in (first, second):
        execution = eventually(lambda cid=checkpoint_id: _finished(signoff, cid))
        assert execution["status"] == "SUCCEEDED"
    assert len(stack.received("access_request")) == 1

    # The conversation's own trail, as archived: the form, each checkpoint and decision, the result
    assert signoff.call("POST", "/local/drain").status == 200
    assert signoff.archive is not None
    records = [json.loads(line) for f in sorted(signoff.archive.rglob("*.jsonl.gz")) for line in gzip.open(f, "rt")]
    trail = sorted((event_from_record(r) for r in records if r["checkpoint_id"] == conversation), key=lambda e: e.seq)
    assert verify_chain(trail) == [] and [e.seq for e in trail] == list(range(1, len(trail) + 1))
    types = [e.type for e in trail]
    assert types.count(EventType.HELPDESK_FORM_SUBMITTED) == 1 and types.count(EventType.HELPDESK_EXECUTED) == 1
    requested = [e.data["checkpoint_id"] for e in trail if e.type is EventType.HELPDESK_APPROVAL_REQUESTED]
    decisions = [e.data for e in trail if e.type is EventType.HELPDESK_APPROVAL_DECIDED]
    decided = [(d["checkpoint_id"], d["status"]) for d in decisions]
    assert requested == [first, second] and decided == [(first, "APPROVED"), (second, "APPROVED")]
    assert next(e.data for e in trail if e.type is EventType.HELPDESK_EXECUTED)["delivered"] is True
    assert "/hooks/access-grant" not in json.dumps([e.data for e in trail])  # the executor's host only


def test_a_policy_exception_needs_the_manager_then_the_security_officer(stack: Stack) -> None:
    signoff = stack.signoff
    _message(signoff, ALICE, "I need an exception to the usb block to move lab data", f"{int(time.time())}.000200")
    bot = eventually(lambda: _bot_dm(signoff, "Policy exception"))
    assert "your manager and security must approve it" in json.dumps(bot["blocks"])
    conversation = next(
        e["value"] for b in bot["blocks"] if b["type"] == "actions" for e in b["elements"]
        if e["action_id"] == "helpdesk:request"
    )  # fmt: skip
    views_before = len(signoff.slack()["views"])
    _click(signoff, ALICE, bot, "helpdesk:request", conversation)
    view = eventually(lambda: next(iter(signoff.slack()["views"][views_before:]), None))
    answers = {
        "policy": "USB storage block",
        "justification": "to transfer benchmark data to the offline lab rig",
        "duration": "14 days",
        "manager": GRACE,
    }
    assert _submit(signoff, ALICE, view, answers) in (None, "", {})

    # Step 1: her manager
    said = eventually(lambda: _said(signoff, bot["ts"], "Step 1 of 2: Grace Hopper decides"))
    [first] = set(CHECKPOINT.findall(said))
    eventually(lambda: signoff.cards(first))
    signoff.approve("grace@example.com", first)

    # Step 2: routing.yaml's security officer, whom the manager cannot stand in for
    said = eventually(lambda: _said(signoff, bot["ts"], "Step 2 of 2: security-officer (Erin Novak) decides"))
    [second] = set(CHECKPOINT.findall(said))
    approvers = signoff.checkpoint(second)["approvers"]
    assert "erin@example.com" in approvers and "alice@example.com" not in approvers
    eventually(lambda: signoff.cards(second))
    assert stack.received("policy_exception") == []
    signoff.approve("erin@example.com", second)

    assert eventually(lambda: _said(signoff, bot["ts"], "Done: the automation accepted the request"))
    [(_headers, body)] = stack.received("policy_exception")
    sent = json.loads(body)
    assert sent["conversation_id"] == conversation and sent["fields"]["manager"] == "grace@example.com"
    assert [(s["step"], s["checkpoint_id"], s["status"]) for s in sent["steps"]] == [
        ("manager", first, "APPROVED"),
        ("role", second, "APPROVED"),
    ]


def test_a_software_request_goes_approval_then_change_ticket_then_change(stack: Stack) -> None:
    signoff = stack.signoff
    # Alice writes in #it-help (through the sandbox, so her message is in the fake Slack's channel)
    text = "can I get photoshop for the town hall videos"
    said_in = {"person": "alice@example.com", "channel": "C01ITHELP", "text": text}
    posted = signoff.call("POST", "/sandbox/api/say", said_in)
    assert posted.status == 200 and posted.body["status"] == 200, posted.body
    asked = str(posted.body["ts"])
    # Software is answered in the channel's thread (public), under her message
    bot = eventually(lambda: next((r for r in _replies(signoff, asked) if "helpdesk:request" in json.dumps(r)), None))
    conversation = next(
        e["value"] for b in bot["blocks"] if b["type"] == "actions" for e in b["elements"]
        if e["action_id"] == "helpdesk:request"
    )  # fmt: skip
    views_before = len(signoff.slack()["views"])
    payload = block_actions_payload(TEAM, ALICE, conversation, "x", "C01ITHELP", bot["ts"], trigger_id="trg-sw")
    payload["actions"][0]["action_id"] = "helpdesk:request"
    _post(signoff, interactivity_body(payload), "application/x-www-form-urlencoded")
    view = eventually(lambda: next(iter(signoff.slack()["views"][views_before:]), None))
    answers = {"software": "Photoshop", "reason": "town hall videos", "device": "mac", "manager": GRACE}
    assert _submit(signoff, ALICE, view, answers) in (None, "", {})

    said = eventually(lambda: _said(signoff, asked, "Step 1 of 1: Grace Hopper decides", "C01ITHELP"))
    [step] = set(CHECKPOINT.findall(said))
    eventually(lambda: signoff.cards(step))
    assert stack.received("software_request") == []
    signoff.approve("grace@example.com", step)

    # The change ticket is opened in the fake Jira first; the automation gets its key; then done
    opened = eventually(lambda: _said(signoff, asked, "Change ticket", "C01ITHELP"))
    ticket = next(t for t in signoff.slack()["tickets"] if conversation in json.dumps(t))
    assert ticket["key"] in opened and ticket["key"].startswith("IT-")
    assert eventually(lambda: _said(signoff, asked, "Done: the automation accepted the request", "C01ITHELP"))
    [(_headers, body)] = stack.received("software_request")
    assert json.loads(body)["ticket"]["key"] == ticket["key"]
    assert len([t for t in signoff.slack()["tickets"] if conversation in json.dumps(t)]) == 1


def _replies(signoff: LocalSignoff, ts: str) -> list[dict[str, Any]]:
    for message in signoff.slack()["channels"].get("C01ITHELP", []):
        if message["ts"] == ts:
            return list(message["replies"])
    return []


def _finished(signoff: LocalSignoff, checkpoint_id: str) -> dict[str, Any] | None:
    found = next((e for e in signoff.executions() if e["name"] == checkpoint_id), None)
    return found if found and found.get("status") != "RUNNING" else None
