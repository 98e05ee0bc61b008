"""The Slack app end to end, in-process: API Gateway REST proxy events carrying form-encoded,
signed interactivity payloads, through bolt's verification, the directory, DecisionService and
the lazy listeners (run inline), against the fake Slack Web API on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from signoff.audit.events import EventType
from signoff.domain.models import Checkpoint, Status, VoteKind
from signoff.surfaces.slack.blocks import Form
from tests.helpers import derived_policy
from tests.slackfakes import TASK_TOKEN, SlackWorld, routing_with, slack_world

pytestmark = pytest.mark.integration

# The sample hard request without confidential data: its card goes to the public release channel.
PUBLIC = {"risk.data_sensitivity": "internal"}


@pytest.fixture
def world() -> Iterator[SlackWorld]:
    with slack_world() as w:
        yield w


@pytest.fixture
def no_comment() -> Any:
    """The shipped policy, but the two-person gate takes a plain Approve click."""
    return derived_policy({"gates.two-person.comment_required": False})


def _body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


def _refusals(world: SlackWorld, cp: Checkpoint) -> list[dict[str, Any]]:
    return [e.data for e in world.events(cp.id, EventType.REFUSED)]


# -- N of M ------------------------------------------------------------------------------------------


def test_two_of_n_first_approval_keeps_it_pending_second_approves(world: SlackWorld, no_comment: Any) -> None:
    # Given a two-person hard gate whose card is in the release channel
    cp = world.open("hard", PUBLIC, policy=no_comment)
    assert world.card_ref(cp).channel == "C0RELEASE"

    # When Bob approves
    first = world.click("bob", cp, "approve")

    # Then the click is acknowledged, one vote is recorded and the checkpoint still waits
    assert first["statusCode"] == 200
    assert world.get(cp.id).status is Status.PENDING and len(world.get(cp.id).votes) == 1
    assert world.ephemerals("bob") == ["Your approval (12:00 UTC) is recorded. 1 of 2 approvals so far."]
    card = world.card(cp)
    assert card.updates == 1 and "1 of 2 approvals: Bob Chen" in card.block_text()
    assert "signoff:approve" in card.action_ids()

    # When Carol approves too
    world.click("carol", cp, "approve")

    # Then it is approved, the card shows the outcome without buttons, the workflow is answered
    decided = world.get(cp.id)
    assert decided.status is Status.APPROVED and decided.decided_by == "Bob Chen, Carol Diaz"
    card = world.card(cp)
    assert card.action_ids() == [] and "Approved by Bob Chen, Carol Diaz at 12:00 UTC" in card.block_text()
    assert world.workflow.answers == {TASK_TOKEN: {"status": "APPROVED", "decided_by": "Bob Chen, Carol Diaz"}}
    assert world.ephemerals("carol") == ["Your approval (12:00 UTC) is recorded. The checkpoint is approved."]


# -- refusals ----------------------------------------------------------------------------------------


def test_the_requesters_approve_is_refused_told_and_audited(world: SlackWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)

    response = world.click("alice", cp, "approve")

    assert response["statusCode"] == 200
    assert world.get(cp.id).votes == [] and world.get(cp.id).status is Status.PENDING
    assert world.ephemerals("alice") == ["Separation of duties: the requester may not approve their own request."]
    (refused,) = _refusals(world, cp)
    assert (
        refused["refusal"] == "requester"
        and refused["unauthorized"] is True
        and refused["person"] == "alice@example.com"
    )
    assert world.card(cp).updates == 0  # nothing changed: no card update


def test_outsiders_are_refused_whether_or_not_the_directory_knows_them(world: SlackWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)

    world.click("mallory", cp, "approve")
    world.click("stranger", cp, "approve")  # a workspace member the routing file does not list

    assert world.get(cp.id).votes == []
    assert world.ephemerals("mallory") == ["You are not an approver for this checkpoint."]
    assert world.ephemerals("stranger") == ["You are not in Signoff's directory, so you cannot act on checkpoints."]
    assert [(r["refusal"], r["handle"]) for r in _refusals(world, cp)] == [
        ("unauthorized", "slack:T0SIGNOFF/U0MALLORY"),
        ("unauthorized", "slack:T0SIGNOFF/U0STRANGER"),
    ]


def test_a_replayed_signed_payload_adds_no_vote(world: SlackWorld, no_comment: Any) -> None:
    # Given Bob's click, captured with its signature
    cp = world.open("hard", PUBLIC, policy=no_comment)
    body = world.click_body("bob", cp, "approve")
    timestamp = int(time.time())

    # When the identical request arrives twice
    world.send(body, timestamp=timestamp)
    replay = world.send(body, timestamp=timestamp)

    # Then one vote counts and the replay is refused as a duplicate, on the record
    assert replay["statusCode"] == 200
    assert [v.approver for v in world.get(cp.id).votes] == ["bob@example.com"]
    assert [r["refusal"] for r in _refusals(world, cp)] == ["duplicate"]
    assert world.get(cp.id).status is Status.PENDING


@pytest.mark.parametrize(
    ("secret", "age_seconds"),
    [("not-the-signing-secret", 0), (None, 6 * 60)],
    ids=["wrong signature", "timestamp 6 minutes old"],
)
def test_unverifiable_requests_get_401_and_change_nothing(
    world: SlackWorld, no_comment: Any, secret: str | None, age_seconds: int
) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    calls_before = len(world.fake.calls())
    kwargs: dict[str, Any] = {"timestamp": int(time.time()) - age_seconds}
    if secret:
        kwargs["secret"] = secret

    response = world.send(world.click_body("bob", cp, "approve"), **kwargs)

    assert response["statusCode"] == 401
    assert world.get(cp.id).votes == [] and _refusals(world, cp) == []
    assert len(world.fake.calls()) == calls_before  # not even an ephemeral


def test_a_click_after_the_decision_is_told_already_decided(world: SlackWorld) -> None:
    cp = world.open("soft")
    world.click("bob", cp, "veto")

    world.click("dave", cp, "veto")

    assert world.ephemerals("dave") == ["Already decided: denied by Bob Chen at 12:00 UTC."]
    assert [r["refusal"] for r in _refusals(world, cp)] == ["already_decided"]


def test_a_workspace_that_is_not_ours_is_turned_away_audited_and_never_called_back(
    world: SlackWorld, no_comment: Any
) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    calls_before = len(world.fake.calls())

    response = world.send(world.click_body("bob", cp, "approve", team="T0OTHER"))

    # Answered at once; no vote, no listener, and nothing sent to Slack (not even response_url)
    assert response["statusCode"] == 200
    assert world.get(cp.id).votes == []
    assert len(world.fake.calls()) == calls_before and world.fake.responses() == []
    # The attempt is in the trail as an unknown-workspace refusal, with ids only
    (refusal,) = _refusals(world, cp)
    assert refusal["refusal"] == "unknown_workspace" and refusal["unauthorized"] is True
    assert refusal["handle"] == "slack:T0OTHER/U0BOB" and refusal["person"] is None


# -- forms -------------------------------------------------------------------------------------------


def test_deny_opens_a_form_that_requires_a_reason(world: SlackWorld) -> None:
    # Given a pending hard gate
    cp = world.open("hard", PUBLIC)

    # When Bob clicks Deny, a modal opens in the ack path and nothing is recorded yet
    world.click("bob", cp, "deny")
    (view,) = world.fake.views()
    assert view["callback_id"] == Form.DENY and view["private_metadata"] == cp.id
    assert world.get(cp.id).votes == [] and world.ephemerals("bob") == []

    # When he submits it without a reason, the form says so and nothing is recorded
    response = world.submit("bob", Form.DENY, cp.id, {"reason": "  "})
    assert _body(response) == {"response_action": "errors", "errors": {"reason": "A reason is required to deny."}}
    assert world.get(cp.id).status is Status.PENDING and _refusals(world, cp) == []

    # When he gives a reason, the checkpoint is denied and the card says who and why
    response = world.submit("bob", Form.DENY, cp.id, {"reason": "clashes with the sale"})
    assert response["statusCode"] == 200 and not response["body"]  # closes the modal
    denied = world.get(cp.id)
    assert denied.status is Status.DENIED and denied.decision_reason == "clashes with the sale"
    card = world.card(cp)
    assert card.action_ids() == [] and "Denied by Bob Chen at 12:00 UTC: clashes with the sale" in card.block_text()


def test_a_form_submitted_after_the_decision_says_so(world: SlackWorld) -> None:
    cp = world.open("soft")
    world.click("bob", cp, "veto")

    response = world.submit("dave", Form.DENY, cp.id, {"reason": "too late?"})

    body = _body(response)
    assert body["response_action"] == "update"
    assert body["view"]["blocks"][0]["text"]["text"] == "Already decided: denied by Bob Chen at 12:00 UTC."


def test_an_outsiders_deny_click_opens_no_form_and_is_audited(world: SlackWorld) -> None:
    cp = world.open("hard", PUBLIC)

    world.click("mallory", cp, "deny")

    assert world.fake.views() == []
    assert world.ephemerals("mallory") == ["You are not an approver for this checkpoint."]
    assert [(r["refusal"], r["act"]) for r in _refusals(world, cp)] == [("unauthorized", "deny")]


def test_approve_on_a_comment_required_gate_asks_for_the_comment(world: SlackWorld) -> None:
    # Given the shipped two-person gate, which requires a comment
    cp = world.open("hard", PUBLIC)

    # When Carol clicks Approve, she gets the comment form, then submits it
    world.click("carol", cp, "approve")
    (view,) = world.fake.views()
    assert view["callback_id"] == Form.COMMENT
    world.submit("carol", Form.COMMENT, cp.id, {"comment": "migration rehearsed on staging"})

    # Then her approval is recorded with the comment
    (vote,) = world.get(cp.id).votes
    assert (vote.approver, vote.kind, vote.comment) == (
        "carol@example.com",
        VoteKind.APPROVE,
        "migration rehearsed on staging",
    )
    assert "1 of 2 approvals: Carol Diaz" in world.card(cp).block_text()


def test_approve_with_conditions_records_them(world: SlackWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)

    world.click("carol", cp, "approve_conditions")
    bad = world.submit("carol", Form.CONDITIONS, cp.id, {"canary_percent": "250"})
    world.submit("carol", Form.CONDITIONS, cp.id, {"not_before": "18:00 UTC", "canary_percent": "5", "note": None})

    assert _body(bad)["errors"] == {"canary_percent": "A whole percentage from 1 to 100."}
    (vote,) = world.get(cp.id).votes
    assert vote.conditions == {"not_before": "2026-01-01T18:00:00Z", "canary_percent": 5}
    assert world.fake.views()[0]["callback_id"] == Form.CONDITIONS


def test_request_more_info_asks_the_requester_in_the_thread(world: SlackWorld) -> None:
    # Given a pending hard gate
    cp = world.open("hard", PUBLIC)

    # When Carol asks a question through the form
    world.click("carol", cp, "request_info")
    world.submit("carol", Form.INFO, cp.id, {"question": "Is the backfill throttled?"})

    # Then the question is in the card's thread, mentioning the requester, and the clock runs on
    ref = world.card_ref(cp)
    (reply,) = world.fake.replies(ref.channel, ref.ts)
    assert reply.text.startswith("<@U0ALICE> Carol Diaz asks: Is the backfill throttled?")
    assert "The clock keeps running: " in reply.text
    asked = world.get(cp.id)
    assert asked.status is Status.PENDING and asked.deadline == cp.deadline
    (event,) = world.events(cp.id, EventType.INFO_REQUESTED)
    assert event.data["comment"] == "Is the backfill throttled?"


def test_view_details_opens_for_approvers_only(world: SlackWorld) -> None:
    cp = world.open("hard", PUBLIC)

    world.click("bob", cp, "view_details")
    world.click("mallory", cp, "view_details")

    (view,) = world.fake.views()
    assert view["callback_id"] == Form.DETAILS and view["private_metadata"] == cp.id
    assert world.ephemerals("bob") == []
    assert world.ephemerals("mallory") == ["Only this checkpoint's approvers and requester can see its details."]
    assert [r["act"] for r in _refusals(world, cp)] == ["view_details"]


# -- soft gates, escalation, sensitive checkpoints -------------------------------------------------------


def test_a_veto_denies_a_soft_gate(world: SlackWorld) -> None:
    cp = world.open("soft")
    assert world.card_ref(cp).channel == "C0PAYMENTS"

    world.click("dave", cp, "veto")

    vetoed = world.get(cp.id)
    assert vetoed.status is Status.DENIED and vetoed.decision_reason == "vetoed"
    assert world.workflow.answers[TASK_TOKEN]["status"] == "DENIED"
    assert "Denied by Dave Okafor at 12:00 UTC: vetoed" in world.card(cp).block_text()


def test_escalate_tells_the_escalation_route_once(world: SlackWorld) -> None:
    # Given a pending review gate (escalation route team-leads, a private channel)
    cp = world.open(
        "hard", {**PUBLIC, "risk.migration": False, "risk.production_data": False, "signals.model_confidence": 0.3}
    )
    assert cp.assessment.gate.escalation_route == "team-leads"

    # When Bob escalates, twice
    world.click("bob", cp, "escalate")
    world.click("bob", cp, "escalate")

    # Then the checkpoint is marked escalated and the leads' channel got one notice, with buttons
    escalated = world.get(cp.id)
    assert escalated.escalated and len(world.events(cp.id, EventType.ESCALATED)) == 2
    (posted,) = [c.params for c in world.fake.calls("chat.postMessage") if c.params["channel"] == "C0LEADS"]
    assert posted["text"].startswith("Bob Chen escalated this checkpoint to team-leads.")
    (notice,) = world.fake.messages("C0LEADS")
    assert "signoff:approve" in notice.action_ids()  # the leads can decide right there
    assert [m.kind for m in escalated.messages] == ["card", "escalation"]
    assert world.ephemerals("bob") == ["Escalated to team-leads."] * 2
    assert ":rotating_light: Escalated" in world.card(cp).block_text()


def test_a_sensitive_checkpoint_goes_to_direct_messages_only(world: SlackWorld) -> None:
    # Given the sample hard request, which touches confidential data
    cp = world.open("hard")
    assert cp.assessment.gate.sensitive

    # Then each approver got the card in a DM and no channel got anything
    dms = {world.fake.dm_channel(world.user(p.split("@")[0])) for p in cp.approvers}
    assert set(world.fake.channels()) == dms
    assert all(c.params["users"] for c in world.fake.calls("conversations.open"))

    # And a vote in one DM updates every approver's card
    world.click("bob", cp, "approve")
    world.submit("bob", Form.COMMENT, cp.id, {"comment": "ok"})
    assert all("1 of 2 approvals: Bob Chen" in world.fake.messages(dm)[0].block_text() for dm in dms)


# -- directory -----------------------------------------------------------------------------------------


def test_a_release_manager_known_only_through_the_slack_user_group_can_approve(no_comment: Any) -> None:
    # Given Henry, a release manager in the directory without a Slack id, in the S0RELEASE group
    release = {"members": ["carol@example.com", "henry@example.com"], "slack_usergroup": "S0RELEASE"}
    routing = routing_with(
        {"people": [{"id": "henry@example.com", "name": "Henry Ito"}], "roles": {"release-manager": release}}
    )
    with slack_world(routing) as world:
        world.fake.add_user("U0HENRY", name="Henry Ito", email="henry@example.com")
        world.fake.set_usergroup("S0RELEASE", ["U0CAROL", "U0HENRY"])
        cp = world.open("hard", PUBLIC, policy=no_comment)

        # When he approves, twice (the second is a duplicate)
        world.click("henry", cp, "approve")
        world.click("henry", cp, "approve")

        # Then he is recognised by group and email, and the group was listed once (cached)
        assert [(v.approver, v.name) for v in world.get(cp.id).votes] == [("henry@example.com", "Henry Ito")]
        assert len(world.fake.calls("usergroups.users.list")) == 1
        # And once the cache is stale the group is asked again
        world.directory_clock[0] += 301
        world.click("henry", cp, "approve")
        assert len(world.fake.calls("usergroups.users.list")) == 2


# -- /signoff ------------------------------------------------------------------------------------------


def test_the_slash_command_answers_with_the_status_privately(world: SlackWorld) -> None:
    cp = world.open("hard", PUBLIC)

    response = world.command("carol", cp.id)

    body = _body(response)
    assert response["statusCode"] == 200 and body["text"].startswith("[Checkpoint Required] Deploy service-api")
    assert body["response_type"] == "ephemeral"
    assert [b["type"] for b in body["blocks"]].count("actions") == 0
    assert "0 of 2 approvals" in json.dumps(body["blocks"])


@pytest.mark.parametrize("text", ["mallory-asks", "cp_00000000000000000000000000", "not-an-id"])
def test_the_slash_command_shows_nothing_to_others_or_for_unknown_ids(world: SlackWorld, text: str) -> None:
    cp = world.open("hard", PUBLIC)
    who, query = ("mallory", cp.id) if text == "mallory-asks" else ("carol", text)

    body = _body(world.command(who, query))

    assert body["text"] == f"No checkpoint `{query}` that you can see."


def test_the_slash_command_without_an_id_explains_itself(world: SlackWorld) -> None:
    assert _body(world.command("carol", ""))["text"].startswith("Usage: `/signoff <checkpoint-id>`")


def test_the_events_url_answers_slacks_verification_challenge(world: SlackWorld) -> None:
    body = json.dumps(
        {
            "token": "legacy",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )

    response = world.send(body, headers={"Content-Type": "application/json"})

    assert response["statusCode"] == 200
    assert _body(response) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
