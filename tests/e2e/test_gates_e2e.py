"""Human gates end to end on the local stack: the approval state machine on moto's interpreter,
the very Slack handler behind /v1/slack/events reached with properly signed payloads, the fake
Slack's view of every card, the CLI a pipeline runs, and the embedded example workflow.

The fast test policy keeps the shipped gates. Every gate a test clicks waits minutes, so a click
made late on a busy machine still counts: soft 'veto-10m'; hard 'review' (1 approver) and
'two-person' (2 approvers with comments). The gates a test only waits out wait seconds: soft
'veto-5s' (fail-open); hard 'review-6s' then escalation to team-leads 4 s, fail-closed;
'review-open' 3 s, fail-open. Waits poll on state up to a generous ceiling."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from local.fake_slack import block_actions_payload, interactivity_body, signed_request
from tests.e2e.conftest import ROOT, SIGNING_SECRET, LocalSignoff, eventually, expiring_review, expiring_soft

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

APPROVERS = ["bob@example.com", "carol@example.com", "dave@example.com", "grace@example.com"]


def sample(name: str, **risk: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / "api" / f"checkpoint-{name}.json").read_text())
    data["risk"].update(risk)
    data["request_id"] = f"req-{uuid.uuid4()}"
    return data


def create(signoff: LocalSignoff, body: dict[str, Any]) -> dict[str, Any]:
    reply = signoff.call("POST", "/v1/checkpoints", body, {"Idempotency-Key": str(uuid.uuid4())})
    assert reply.status in (200, 202), reply.body
    cp: dict[str, Any] = reply.body
    return cp


def decided(signoff: LocalSignoff, checkpoint_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        cp = signoff.checkpoint(checkpoint_id)
        return cp if cp["status"] != "PENDING" else None

    result: dict[str, Any] = eventually(done)
    return result


def finalized(signoff: LocalSignoff, checkpoint_id: str) -> dict[str, Any]:
    """The approval execution ended (Finalize ran)."""
    result: dict[str, Any] = eventually(lambda: (e := signoff.execution(checkpoint_id))["status"] != "RUNNING" and e)
    return result


def pending_with(signoff: LocalSignoff, request_id: str) -> dict[str, Any]:
    """The pending checkpoint made for a request id (the CLI and embedded paths create their own)."""

    def find() -> dict[str, Any] | None:
        items = signoff.call("GET", "/v1/checkpoints?status=pending").body["items"]
        return next((c for c in items if c["request"]["request_id"] == request_id), None)

    found: dict[str, Any] = eventually(find)
    return found


def run_cli(signoff: LocalSignoff, request: Any) -> subprocess.Popen[str]:
    """`signoff request FILE --wait`, as a pipeline step runs it."""
    command = [sys.executable, "-m", "signoff.tools.cli", "request", str(request), "--url", signoff.url, "--wait"]
    return subprocess.Popen(
        [*command, "--timeout", "10m", "--poll", "1s"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def posted(signoff: LocalSignoff, checkpoint_id: str) -> list[dict[str, Any]]:
    cards: list[dict[str, Any]] = eventually(lambda: signoff.cards(checkpoint_id))
    return cards


def types(signoff: LocalSignoff, checkpoint_id: str) -> list[str]:
    return [e["type"] for e in signoff.events(checkpoint_id)]


def buttons(card: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in card["blocks"] if b.get("type") == "actions" for e in b.get("elements", [])]


# -- hard gate, 2 of N ---------------------------------------------------------------------------


def test_two_of_n_with_the_pipeline_waiting_on_the_cli(signoff: LocalSignoff, tmp_path: Any) -> None:
    # Given a pipeline asking with the CLI and waiting for the decision
    request = tmp_path / "request.json"
    request.write_text(json.dumps(sample("hard")))
    cli = run_cli(signoff, request)
    cp = pending_with(signoff, json.loads(request.read_text())["request_id"])
    assert cp["approvers"] == APPROVERS and cp["assessment"]["gate"]["approvals_required"] == 2
    posted(signoff, cp["id"])
    # When carol approves with conditions (a comment is required on this high-risk gate)
    first = signoff.act("carol@example.com", cp["id"], "approve_conditions")
    assert first["views"], first
    signoff.submit("carol@example.com", first["views"][0], "canary first", canary_percent="5", not_before="")
    # Then it is still pending, and the card says 1 of 2
    assert signoff.checkpoint(cp["id"])["status"] == "PENDING"
    assert eventually(lambda: any("1 of 2" in json.dumps(c["blocks"]) for c in signoff.cards(cp["id"])))
    # When dave approves too
    signoff.approve("dave@example.com", cp["id"], "migration window ok")
    # Then it is approved with carol's conditions, the pipeline's CLI exits 0 and prints them
    final = decided(signoff, cp["id"])
    assert final["status"] == "APPROVED" and final["conditions"]["canary_percent"] in (5, "5")
    out, _ = cli.communicate(timeout=600)
    assert cli.returncode == 0, out
    assert "canary_percent" in out
    # And every card shows the outcome without buttons
    finalized(signoff, cp["id"])
    cards = eventually(lambda: [c for c in signoff.cards(cp["id"]) if not buttons(c)] or None)
    assert cards and all("Approved" in json.dumps(c["blocks"]) for c in cards)


def test_the_requester_and_an_outsider_are_refused_and_audited(signoff: LocalSignoff) -> None:
    # Given a non-sensitive production checkpoint (posted to the release channel)
    cp = create(signoff, sample("hard", data_sensitivity="internal"))
    cards = posted(signoff, cp["id"])
    assert {c["channel"] for c in cards} == {"C0RELEASE"}
    # When the requester and someone outside the directory's approvers click Approve
    by_requester = signoff.act("alice@example.com", cp["id"], "approve")
    by_outsider = signoff.act("mallory@example.com", cp["id"], "approve")
    # Then both are told why, nothing is approved, and both attempts are in the audit trail
    assert "Separation of duties" in json.dumps(by_requester["ephemerals"])
    assert "not an approver" in json.dumps(by_outsider["ephemerals"])
    assert signoff.checkpoint(cp["id"])["votes"] == []
    refused = [e["data"] for e in signoff.events(cp["id"]) if e["type"] == "refused"]
    assert [(r["person"], r["refusal"], r["unauthorized"]) for r in refused] == [
        ("alice@example.com", "requester", True),
        ("mallory@example.com", "unauthorized", True),
    ]


def test_deny_needs_a_reason_and_the_cli_exits_1(signoff: LocalSignoff, tmp_path: Any) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(sample("hard")))
    cli = run_cli(signoff, request)
    cp = pending_with(signoff, json.loads(request.read_text())["request_id"])
    posted(signoff, cp["id"])
    clicked = signoff.act("grace@example.com", cp["id"], "deny")
    view = clicked["views"][0]
    # An empty reason is refused in the modal itself
    empty = signoff.submit("grace@example.com", view, "")
    assert empty["answer"] and empty["answer"].get("response_action") == "errors"
    assert signoff.checkpoint(cp["id"])["status"] == "PENDING"
    # A reason denies it, the workflow ends, the CLI exits 1
    signoff.submit("grace@example.com", view, "migration overlaps the sale")
    assert decided(signoff, cp["id"])["status"] == "DENIED"
    assert finalized(signoff, cp["id"])["status"] == "SUCCEEDED"
    out, _ = cli.communicate(timeout=600)
    assert cli.returncode == 1, out


# -- soft gate -----------------------------------------------------------------------------------


def test_soft_gate_runs_when_nobody_vetoes(signoff: LocalSignoff) -> None:
    cp = create(signoff, expiring_soft(sample("soft")))
    assert cp["assessment"]["gate"]["profile"] == "veto-5s"
    card = posted(signoff, cp["id"])[0]
    assert "unless vetoed" in json.dumps(card["blocks"]) and buttons(card)[0] == "signoff:veto"
    final = decided(signoff, cp["id"])
    assert (final["status"], final["decided_by"]) == ("APPROVED", "policy (fail-open)")


def test_soft_gate_veto_denies(signoff: LocalSignoff) -> None:
    cp = create(signoff, sample("soft"))
    posted(signoff, cp["id"])
    clicked = signoff.act("bob@example.com", cp["id"], "veto")
    if clicked["views"]:  # a reason may be asked for
        signoff.submit("bob@example.com", clicked["views"][0], "release freeze")
    assert decided(signoff, cp["id"])["status"] == "DENIED"


# -- nobody answers --------------------------------------------------------------------------------


def test_nobody_answers_escalates_then_fails_closed(signoff: LocalSignoff) -> None:
    # Hard gate 'review-6s': escalation to team-leads, fail-closed
    cp = create(signoff, expiring_review(sample("soft")))
    assert cp["assessment"]["gate"]["profile"] == "review-6s"
    # The escalation route hears about it after the first wait
    assert eventually(lambda: "escalated" in types(signoff, cp["id"]))
    assert eventually(lambda: [c for c in signoff.cards(cp["id"]) if c["channel"] == "C0LEADS"])
    # And at the deadline it is denied (expired, fail-closed)
    final = decided(signoff, cp["id"])
    assert final["status"] == "EXPIRED" and "fail-closed" in final["decided_by"]


def test_nobody_answers_fails_open_where_the_policy_says_so(signoff: LocalSignoff) -> None:
    # Medium risk (confidential data), low confidence: the fast policy's fail-open hard gate
    body = sample("soft", data_sensitivity="confidential")
    body["signals"]["model_confidence"] = 0.1
    cp = create(signoff, body)
    assert cp["assessment"]["gate"]["profile"] == "review-open"
    final = decided(signoff, cp["id"])
    assert (final["status"], final["decided_by"]) == ("APPROVED", "policy (fail-open)")


# -- replays, signatures, late clicks, cancel -----------------------------------------------------


def _signed_click(signoff: LocalSignoff, checkpoint_id: str, card: dict[str, Any], *, secret: str = SIGNING_SECRET,
                  age: int = 0, user: str = "U0BOB") -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    payload = block_actions_payload(
        "T0SIGNOFF", user, checkpoint_id, "approve", card["channel"], card["ts"], "1.2.trig"
    )
    body = interactivity_body(payload)
    headers = {
        **signed_request(body, secret, int(time.time()) - age),
        "content-type": "application/x-www-form-urlencoded",
    }
    reply = signoff.call("POST", "/v1/slack/events", body.encode(), headers)
    return reply.status, body.encode(), headers


def test_bad_signatures_and_stale_timestamps_are_401_and_change_nothing(signoff: LocalSignoff) -> None:
    cp = create(signoff, sample("hard", data_sensitivity="internal"))
    card = posted(signoff, cp["id"])[0]
    assert _signed_click(signoff, cp["id"], card, secret="not-the-secret")[0] == 401
    assert _signed_click(signoff, cp["id"], card, age=6 * 60)[0] == 401
    assert signoff.checkpoint(cp["id"])["votes"] == []
    assert "voted" not in types(signoff, cp["id"])


def test_a_replayed_signed_payload_adds_no_vote(signoff: LocalSignoff) -> None:
    # A one-approver gate without a comment: 'review' (low risk, low confidence)
    body = sample("soft")
    body["signals"]["model_confidence"] = 0.1
    body["risk"]["blast_radius_pct"] = 1
    cp = create(signoff, body)
    card = posted(signoff, cp["id"])[0]
    status, raw, headers = _signed_click(signoff, cp["id"], card)
    assert status == 200
    # The very same bytes and signature, sent again
    again = signoff.call("POST", "/v1/slack/events", raw, headers)
    assert again.status == 200
    cp_now = signoff.checkpoint(cp["id"])
    assert len(cp_now["votes"]) == 1 and cp_now["status"] == "APPROVED"
    assert types(signoff, cp["id"]).count("voted") == 1


def test_a_click_after_the_decision_says_already_decided(signoff: LocalSignoff) -> None:
    body = sample("soft")
    body["signals"]["model_confidence"] = 0.1
    cp = create(signoff, body)
    posted(signoff, cp["id"])
    signoff.act("grace@example.com", cp["id"], "approve")
    assert decided(signoff, cp["id"])["status"] == "APPROVED"
    late = signoff.act("bob@example.com", cp["id"], "approve")
    assert "Already decided" in json.dumps(late["ephemerals"])


def test_cancel_by_the_requester_stops_the_execution(signoff: LocalSignoff) -> None:
    cp = create(signoff, sample("hard"))
    posted(signoff, cp["id"])
    other = signoff.call(
        "POST", f"/v1/checkpoints/{cp['id']}/cancel", {"reason": "x"},
        {"X-Signoff-Local-Caller": "arn:aws:iam::123456789012:user/someone-else"},
    )  # fmt: skip
    assert other.status == 403
    reply = signoff.call("POST", f"/v1/checkpoints/{cp['id']}/cancel", {"reason": "superseded by v2.4.2"})
    assert reply.status == 200 and reply.body["status"] == "CANCELLED"
    assert finalized(signoff, cp["id"])["status"] == "SUCCEEDED"
    assert signoff.call("POST", f"/v1/checkpoints/{cp['id']}/cancel", {}).status == 409


# -- routing -------------------------------------------------------------------------------------


def test_a_sensitive_checkpoint_never_reaches_a_public_channel(signoff: LocalSignoff) -> None:
    cp = create(signoff, sample("hard", data_sensitivity="restricted"))
    assert cp["assessment"]["gate"]["sensitive"]
    cards = posted(signoff, cp["id"])
    time.sleep(0.5)
    channels = {c["channel"] for c in signoff.cards(cp["id"])}
    assert channels == {"D0BOB", "D0CAROL", "D0DAVE", "D0GRACE"}
    assert all(not ch.startswith("C") for ch in channels) and len(cards) >= 1


# -- embedded in a Step Functions workflow ---------------------------------------------------------


def _run_example(signoff: LocalSignoff, body: dict[str, Any]) -> str:
    name = f"release-{uuid.uuid4().hex[:8]}"
    reply = signoff.call(
        "POST",
        "/local/executions",
        {"state_machine": "Signoff-example-release", "name": name, "input": {"checkpoint": body}},
    )
    assert reply.status == 200, reply.body
    return name


def _embedded_checkpoint(signoff: LocalSignoff, request_id: str) -> dict[str, Any]:
    found: dict[str, Any] = eventually(
        lambda: next(
            (
                c
                for c in signoff.call("GET", "/v1/checkpoints?status=pending").body["items"]
                if c["request"]["request_id"] == request_id
            ),
            None,
        )  # fmt: skip
    )
    return found


def test_embedded_workflow_resumes_with_the_decision(signoff: LocalSignoff) -> None:
    body = sample("hard", data_sensitivity="internal")  # two-person: minutes to decide
    name = _run_example(signoff, body)
    cp = pending_with(signoff, body["request_id"])
    assert cp["caller"].endswith(":stateMachine:Signoff-example-release")
    posted(signoff, cp["id"])
    signoff.approve("carol@example.com", cp["id"], "window ok")
    signoff.approve("dave@example.com", cp["id"], "canary looked fine")
    done = eventually(lambda: (e := signoff.execution(name))["status"] != "RUNNING" and e)
    assert done["status"] == "SUCCEEDED", done
    assert done["output"]["deployed"] is True and done["output"]["checkpoint_id"] == cp["id"]


def test_embedded_workflow_fails_with_signoff_denied(signoff: LocalSignoff) -> None:
    body = copy.deepcopy(sample("hard", data_sensitivity="internal"))  # two-person: minutes to decide
    name = _run_example(signoff, body)
    cp = pending_with(signoff, body["request_id"])
    posted(signoff, cp["id"])
    clicked = signoff.act("grace@example.com", cp["id"], "deny")
    signoff.submit("grace@example.com", clicked["views"][0], "not during the freeze")
    done = eventually(lambda: (e := signoff.execution(name))["status"] != "RUNNING" and e)
    assert (done["status"], done["error"]) == ("FAILED", "Signoff.Denied")


def test_embedded_auto_gate_resumes_at_once(signoff: LocalSignoff) -> None:
    name = _run_example(signoff, sample("auto"))
    done = eventually(lambda: (e := signoff.execution(name))["status"] != "RUNNING" and e)
    assert done["status"] == "SUCCEEDED" and done["output"]["approved_by"] == "policy"
