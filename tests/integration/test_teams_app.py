"""The Teams app end to end, in-process: API Gateway REST proxy events carrying activities signed
like the Bot Connector signs them, through the JWT checks, the directory, DecisionService and the
follow-ups, against the fake connector (token endpoint, JWKS, activities) on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from local.fake_slack import FakeSlack
from local.fake_teams import Conversation, FakeTeams, SigningKey, card_verbs, conversation_update, installation_update
from signoff.audit.events import EventType
from signoff.domain.models import Checkpoint, Status, VoteKind
from signoff.surfaces.slack.chat import SlackChat, web_client
from signoff.surfaces.teams.connector import ConnectorError
from signoff.testing.memory import InMemoryChat
from tests.helpers import derived_policy
from tests.slackfakes import TASK_TOKEN
from tests.teamsfakes import (
    CHANNELS,
    TEAM,
    TeamsWorld,
    answered_card,
    invoke_value,
    notice,
    teams_routing,
    teams_world,
)

pytestmark = pytest.mark.integration

# The sample hard request without confidential data: its card goes to the public release channel.
PUBLIC = {"risk.data_sensitivity": "internal"}


@pytest.fixture
def world() -> Iterator[TeamsWorld]:
    with teams_world() as w:
        yield w


@pytest.fixture
def no_comment() -> Any:
    """The shipped policy, but the two-person gate takes a plain Approve click."""
    return derived_policy({"gates.two-person.comment_required": False})


def _refusals(world: TeamsWorld, cp: Checkpoint) -> list[dict[str, Any]]:
    return [e.data for e in world.events(cp.id, EventType.REFUSED)]


def _verbs(card: dict[str, Any]) -> list[str]:
    return card_verbs(card)


# -- authentication: every refusal is a 401/403 and records nothing --------------------------------


STRANGER = SigningKey.named("somebody-elses-key")


@pytest.mark.parametrize(
    ("mint", "refetched"),
    [
        ({"audience": "another-bot-app-id"}, False),
        ({"issuer": "https://sts.windows.net/evil/"}, False),
        ({"expires_in": -301}, False),  # expired 5 min 1 s ago: beyond the leeway
        ({"key": STRANGER, "kid": "fake-teams-key-1"}, False),  # another RSA key under the connector's kid
        ({"key": STRANGER}, True),  # a kid nobody published: the keys are fetched again, and still refused
        ({"service_url": "https://smba.evil.example/teams/"}, False),
        ({"endorse": False}, False),  # a published key, but endorsed for another channel
    ],
    ids=["audience", "issuer", "expired", "foreign-key", "unknown-kid", "service-url", "endorsement"],
)
def test_a_click_with_a_bad_token_is_refused_and_records_nothing(
    world: TeamsWorld, no_comment: Any, mint: dict[str, Any], refetched: bool
) -> None:
    # Given a pending gate, what the world holds before the click, and keys cached a while ago
    cp = world.open("hard", PUBLIC, policy=no_comment)
    events, calls, claims = len(world.events(cp.id)), len(world.fake.calls()), dict(world.activity_log.claims)
    world.monotonic[0] += 120

    # When Bob's approve arrives with a token that breaks one rule
    response = world.click("bob", cp, "approve", **mint)

    # Then it is refused, and nothing was recorded: no vote, no event, no claim, no connector call
    assert response["statusCode"] == 401 and response["body"] == ""
    assert world.get(cp.id).votes == [] and len(world.events(cp.id)) == events
    assert world.activity_log.claims == claims
    assert [c.operation for c in world.fake.calls()[calls:]] == (["keys"] if refetched else [])


def test_a_tenant_not_on_the_allow_list_is_turned_away_and_audited(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    activity = world.click_activity("bob", cp, "approve")
    foreign = "00000000-0000-4000-8000-00000000e0e0"
    activity["conversation"]["tenantId"] = activity["channelData"]["tenant"]["id"] = foreign

    claims, calls = dict(world.activity_log.claims), len(world.fake.calls())

    response = world.send(activity)

    # Answered (an invoke error for the card), no vote, no claim, nothing sent to the connector
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["statusCode"] == 403
    assert world.get(cp.id).votes == [] and world.activity_log.claims == claims
    assert [c.operation for c in world.fake.calls()[calls:]] == []
    # The attempt is in the trail as an unknown-workspace refusal, with ids only
    (refused,) = [e.data for e in world.events(cp.id) if e.type is EventType.REFUSED]
    assert refused["refusal"] == "unknown_workspace" and refused["person"] is None
    assert refused["handle"].startswith(f"teams:{foreign}/")


def test_a_request_without_a_token_is_refused_before_its_body_is_read(world: TeamsWorld) -> None:
    from tests.helpers import api_event

    event = api_event("POST", "/teams/messages", body="{not json", headers={"Content-Type": "application/json"})

    assert world.app.handle(event)["statusCode"] == 401


def test_a_token_within_the_five_minute_leeway_is_accepted(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)

    response = world.click("bob", cp, "approve", expires_in=-240)

    assert notice(answered_card(response)) == "Approval recorded (1 of 2)."


def test_a_retried_invoke_with_the_same_activity_id_adds_nothing(world: TeamsWorld, no_comment: Any) -> None:
    # Given Bob's approve, handled once
    cp = world.open("hard", PUBLIC, policy=no_comment)
    activity = world.click_activity("bob", cp, "approve")
    first = answered_card(world.send(activity))
    events = world.events(cp.id)

    # When the connector delivers the very same activity again (it timed out waiting)
    again = answered_card(world.send(activity))

    # Then nothing new is recorded (no duplicate-vote refusal either), and Bob still gets his card
    assert world.events(cp.id) == events and len(world.get(cp.id).votes) == 1
    assert notice(first) == "Approval recorded (1 of 2)."
    assert notice(again) == "Your approval (12:00 UTC) is recorded." and "approve" not in _verbs(again)


# -- N of M, separation of duties, outsiders ----------------------------------------------------------


def test_two_of_n_hard_gate_is_approved_through_teams(world: TeamsWorld) -> None:
    # Given the shipped two-person gate (a comment is required) with its card in the release channel
    cp = world.open("hard", PUBLIC)
    assert world.card_ref(cp).channel == CHANNELS["release"]
    assert world.card(cp).card["refresh"]["userIds"]  # type: ignore[index]

    # When Bob approves with his comment typed into the Approve ShowCard
    first = answered_card(world.click("bob", cp, "approve", {"comment": "rehearsed on staging"}))

    # Then his vote is recorded, he is told, and the shared card shows the count
    assert notice(first) == "Approval recorded (1 of 2)." and "approve" not in _verbs(first)
    assert world.get(cp.id).status is Status.PENDING
    assert "1 of 2 approvals: Bob Chen" in world.card(cp).text() and world.card(cp).updates == 1

    # When Carol approves too
    second = answered_card(world.click("carol", cp, "approve", {"comment": "ok from release"}))

    # Then it is approved once, the workflow is answered, and the card shows the outcome without buttons
    decided = world.get(cp.id)
    assert decided.status is Status.APPROVED and decided.decided_by == "Bob Chen, Carol Diaz"
    assert [(v.approver, v.surface, v.comment) for v in decided.votes] == [
        ("bob@example.com", "teams", "rehearsed on staging"),
        ("carol@example.com", "teams", "ok from release"),
    ]
    assert len(world.events(cp.id, EventType.DECIDED)) == 1
    assert world.workflow.answers == {TASK_TOKEN: {"status": "APPROVED", "decided_by": "Bob Chen, Carol Diaz"}}
    assert notice(second) == "Recorded. The checkpoint is now approved." and "actions" not in second
    card = world.card(cp)
    assert card.verbs() == [] and "refresh" not in (card.card or {})
    assert "Approved by Bob Chen, Carol Diaz at 12:00 UTC: rehearsed on staging; ok from release" in card.text()


def test_the_requester_may_not_approve_and_the_attempt_is_audited(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    assert cp.request.requester.id == "alice@example.com"

    card = answered_card(world.click("alice", cp, "approve"))

    assert notice(card) == "Separation of duties: the requester may not approve their own request."
    assert card["body"][0]["color"] == "Attention"
    assert world.get(cp.id).votes == []
    (refusal,) = _refusals(world, cp)
    assert refusal | {"handle": "-"} == {
        "refusal": "requester", "unauthorized": True, "act": "approve", "surface": "teams",
        "handle": "-", "person": "alice@example.com",
    }  # fmt: skip
    assert refusal["handle"].startswith("teams:") and refusal["handle"].endswith("11111111-1111-4111-8111-111111111111")


def test_an_outsider_is_refused_and_audited(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)

    card = answered_card(world.click("mallory", cp, "deny", {"reason": "because"}))

    assert notice(card) == "You are not an approver for this checkpoint."
    assert [(r["refusal"], r["act"], r["person"]) for r in _refusals(world, cp)] == [
        ("unauthorized", "deny", "mallory@example.com")
    ]
    assert world.get(cp.id).status is Status.PENDING


def test_someone_unknown_to_the_directory_is_refused_under_their_teams_handle(world: TeamsWorld) -> None:
    cp = world.open("hard", PUBLIC)
    world.fake.add_user("abcdefab-0000-4000-8000-00000000abcd", name="Zed Unknown", email="zed@elsewhere.example")

    card = answered_card(world.click("zed", cp, "escalate"))

    assert notice(card) == "You are not in Signoff's directory, so you cannot act on checkpoints."
    (refusal,) = _refusals(world, cp)
    assert refusal["person"] is None and refusal["handle"].endswith("abcdefab-0000-4000-8000-00000000abcd")


def test_a_person_without_a_teams_id_is_recognised_by_the_email_the_connector_gives(no_comment: Any) -> None:
    # Given Henry, a release manager the routing file knows by email only
    release = {"members": ["carol@example.com", "henry@example.com"], "slack_usergroup": "S0RELEASE"}
    routing = teams_routing(
        people=[{"id": "henry@example.com", "name": "Henry Ito"}], roles={"release-manager": release}
    )
    with teams_world(routing) as world:
        world.fake.add_user("48484848-0000-4000-8000-000000004848", name="Henry Ito", email="Henry@Example.com")
        cp = world.open("hard", PUBLIC, policy=no_comment)

        # When he approves, and clicks again
        world.click("henry", cp, "approve")
        world.click("henry", cp, "approve")

        # Then he is recognised through the members API (asked once: cached), and voted once
        assert [(v.approver, v.name) for v in world.get(cp.id).votes] == [("henry@example.com", "Henry Ito")]
        assert len(world.fake.calls("member")) == 1
        assert [r["refusal"] for r in _refusals(world, cp)] == ["duplicate"]


# -- deny, veto, late clicks -----------------------------------------------------------------------


def test_deny_needs_a_reason(world: TeamsWorld) -> None:
    cp = world.open("hard", PUBLIC)

    # When Bob denies without a reason: he is told, nothing is recorded
    blank = answered_card(world.click("bob", cp, "deny", {"reason": "   "}))
    assert notice(blank) == "A reason is required to deny."
    assert world.get(cp.id).status is Status.PENDING and _refusals(world, cp) == []

    # When he gives one, the checkpoint is denied and every card says who and why
    denied = answered_card(world.click("bob", cp, "deny", {"reason": "clashes with the sale"}))
    assert notice(denied) == "Recorded. The checkpoint is now denied."
    assert world.get(cp.id).decision_reason == "clashes with the sale"
    assert world.workflow.answers[TASK_TOKEN]["status"] == "DENIED"
    card = world.card(cp)
    assert card.verbs() == [] and "Denied by Bob Chen at 12:00 UTC: clashes with the sale" in card.text()


def test_a_veto_denies_a_soft_gate(world: TeamsWorld) -> None:
    cp = world.open("soft")
    assert world.card_ref(cp).channel == CHANNELS["payments"]

    world.click("dave", cp, "veto")

    vetoed = world.get(cp.id)
    assert vetoed.status is Status.DENIED and vetoed.decision_reason == "vetoed"
    assert [(v.approver, v.kind) for v in vetoed.votes] == [("dave@example.com", VoteKind.DENY)]
    assert "Denied by Dave Okafor at 12:00 UTC: vetoed" in world.card(cp).text()


def test_approve_is_not_offered_on_a_soft_gate(world: TeamsWorld) -> None:
    cp = world.open("soft")

    card = answered_card(world.click("dave", cp, "approve"))

    assert notice(card) == "'approve' is not available on a soft gate."
    assert [r["refusal"] for r in _refusals(world, cp)] == ["not_on_this_gate"]


def test_a_click_after_the_decision_says_it_is_already_decided(world: TeamsWorld) -> None:
    cp = world.open("soft")
    world.click("dave", cp, "veto", {"reason": "freeze week"})

    card = answered_card(world.click("bob", cp, "veto"))

    assert notice(card) == "Already decided: denied by Dave Okafor at 12:00 UTC."
    assert "actions" not in card and "Denied by Dave Okafor at 12:00 UTC: freeze week" in json.dumps(card)
    assert [r["refusal"] for r in _refusals(world, cp)] == ["already_decided"]


def test_a_click_after_the_deadline_is_too_late(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    world.clock.advance(3 * 3600)

    card = answered_card(world.click("bob", cp, "approve"))

    assert notice(card).startswith("Too late: the deadline passed at ")
    assert [r["refusal"] for r in _refusals(world, cp)] == ["late"]


# -- approver-specific views, details, conditions ---------------------------------------------------


def test_refresh_gives_each_approver_their_own_view(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    world.click("bob", cp, "approve")
    events, claims = world.events(cp.id), dict(world.activity_log.claims)

    bobs = answered_card(world.click("bob", cp, "refresh"))
    carols = answered_card(world.click("carol", cp, "refresh"))

    assert notice(bobs) == "Your approval (12:00 UTC) is recorded." and "approve" not in _verbs(bobs)
    assert "approve" in _verbs(carols) and carols["body"][0]["style"] == "heading"
    assert world.events(cp.id) == events and world.activity_log.claims == claims  # a refresh records nothing


def test_view_details_is_for_approvers_and_the_requester_only(world: TeamsWorld) -> None:
    cp = world.open("hard", PUBLIC)

    details = answered_card(world.click("alice", cp, "view_details"))
    refused = answered_card(world.click("mallory", cp, "view_details"))

    assert details["actions"][0]["verb"] == "refresh" and "Score breakdown" in json.dumps(details)
    assert notice(refused) == "Only this checkpoint's approvers and requester can see its details."
    assert [r["act"] for r in _refusals(world, cp)] == ["view_details"]


def test_approve_with_conditions_checks_then_records_them(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)

    bad = answered_card(world.click("carol", cp, "approve_conditions", {"canary_percent": "250"}))
    world.click("carol", cp, "approve_conditions", {"not_before": "18:00 UTC", "canary_percent": "5", "note": ""})

    assert notice(bad) == "Canary percent: A whole percentage from 1 to 100."
    (vote,) = world.get(cp.id).votes
    assert vote.conditions == {"not_before": "2026-01-01T18:00:00Z", "canary_percent": 5}


def test_a_sensitive_checkpoint_goes_to_one_to_one_chats_and_is_shown_to_its_people_only(world: TeamsWorld) -> None:
    # Given the sample hard request, which touches confidential data
    cp = world.open("hard")
    assert cp.assessment.gate.sensitive

    # Then each approver got the card in their 1:1 chat with the bot, and no channel got anything
    chats = {FakeTeams.personal_conversation(world.user(p.split("@")[0]).aad) for p in cp.approvers}
    assert set(world.fake.conversations()) == chats
    assert len(world.fake.calls("create")) == len(cp.approvers)

    # And someone else who gets hold of a click sees a message, not the checkpoint
    card = answered_card(world.click("mallory", cp, "refresh"))
    assert card["body"] == [card["body"][0]] and "Deploy" not in json.dumps(card)


# -- cards everywhere, threads, escalation ------------------------------------------------------------


@pytest.mark.parametrize("slack", ["in-memory", "fake-web-api"])
def test_a_checkpoint_on_slack_and_teams_is_decided_once_and_both_cards_show_it(
    no_comment: Any, slack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    routing = teams_routing()
    with FakeSlack() as fake_slack:
        other = (
            InMemoryChat("slack")
            if slack == "in-memory"
            else SlackChat(web_client(fake_slack.token, fake_slack.url), routing)
        )
        with teams_world(routing, other=other) as world:
            # Given a checkpoint routed to the release channel on both surfaces
            cp = world.open("hard", PUBLIC, policy=no_comment)
            assert sorted(m.surface for m in cp.messages) == ["slack", "teams"]

            # When two approvers approve through Teams, and Finalize runs as the workflow would
            world.click("bob", cp, "approve")
            world.click("carol", cp, "approve")
            world.steps.finalize(cp.id, {"status": "APPROVED"})

            # Then it was decided once, and the Slack card and the Teams card both show the outcome
            assert world.get(cp.id).status is Status.APPROVED
            assert len(world.events(cp.id, EventType.DECIDED)) == 1
            outcome = "Approved by Bob Chen, Carol Diaz at 12:00 UTC"
            assert outcome in world.card(cp).text() and world.card(cp).verbs() == []
            if isinstance(other, InMemoryChat):
                assert other.updates[-1][1].outcome is not None and other.updates[-1][1].outcome.startswith(outcome)
            else:
                (message,) = fake_slack.messages("C0RELEASE")
                assert outcome in message.block_text() and message.action_ids() == []


def test_request_more_info_asks_the_requester_in_the_thread(world: TeamsWorld) -> None:
    cp = world.open("hard", PUBLIC)

    answer = answered_card(world.click("carol", cp, "request_info", {"question": "Is the backfill throttled?"}))

    assert notice(answer) == "Asked the requester in the thread; the clock keeps running."
    ref = world.card_ref(cp)
    (reply,) = world.fake.replies(ref.channel, ref.ts)
    assert reply.body["text"].startswith("<at>Alice Martin</at> Carol Diaz asks: Is the backfill throttled?")
    (mention,) = reply.body["entities"]
    assert mention["mentioned"] == {"id": "11111111-1111-4111-8111-111111111111", "name": "Alice Martin"}
    assert world.get(cp.id).status is Status.PENDING


def test_escalate_tells_the_escalation_route_once(world: TeamsWorld) -> None:
    changes = {**PUBLIC, "risk.migration": False, "risk.production_data": False, "signals.model_confidence": 0.3}
    cp = world.open("hard", changes)
    assert cp.assessment.gate.escalation_route == "team-leads"

    world.click("bob", cp, "escalate")
    world.click("bob", cp, "escalate")

    escalated = world.get(cp.id)
    assert escalated.escalated and [m.kind for m in escalated.messages] == ["card", "escalation"]
    (posted,) = [c for c in world.fake.calls("send") if CHANNELS["leads"] in unquote(c.path)]
    assert posted.body["summary"].startswith("Bob Chen escalated this checkpoint to team-leads.")
    assert posted.body["attachments"][0]["content"]["body"][0]["text"].startswith("🚨 Bob Chen escalated")
    (leads,) = world.fake.activities(CHANNELS["leads"])
    assert "approve" in leads.verbs()  # the leads can decide right there
    assert "🚨 Escalated" in world.card(cp).text()


def test_on_lambda_the_other_cards_are_updated_by_the_follow_up(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    world.defer_later = True

    world.click("bob", cp, "approve")

    assert world.card(cp).updates == 0 and len(world.deferred) == 1
    world.followups.run(world.deferred[0])
    assert world.card(cp).updates == 1 and "1 of 2 approvals: Bob Chen" in world.card(cp).text()


# -- conversations and messages ------------------------------------------------------------------------


def test_installing_the_bot_stores_where_it_may_post_and_removing_it_stops_posts() -> None:
    with teams_world(install=False) as world:
        grace = world.user("grace")
        team = Conversation(TEAM, team_id=TEAM, tenant=world.fake.tenant)
        world.send(installation_update(grace, team, service_url=world.fake.service_url))
        release = Conversation(CHANNELS["release"], team_id=TEAM, tenant=world.fake.tenant)
        world.send(conversation_update(grace, release, service_url=world.fake.service_url, event_type="channelCreated"))

        stored = world.references.get_reference(CHANNELS["release"])
        assert stored is not None and (stored.service_url, stored.team_id, stored.active) == (
            world.fake.service_url,
            TEAM,
            True,
        )
        assert world.references.get_reference(TEAM) is not None

        removal = installation_update(grace, release, service_url=world.fake.service_url, action="remove")
        world.send(removal)
        assert world.chat.post_card(CHANNELS["release"], None, _any_card(world)) is None
        assert world.fake.activities(CHANNELS["release"]) == []


def _any_card(world: TeamsWorld) -> Any:
    from signoff.domain.cards import build_card
    from tests.slackfakes import make_checkpoint

    return build_card(make_checkpoint("soft", routing=world.routing, repo=world.repo, clock=world.clock))


def test_a_message_gets_a_short_help_reply(world: TeamsWorld) -> None:
    response = world.message("bob", "hello?")

    assert response["statusCode"] == 200
    (reply,) = world.fake.calls("reply")
    assert reply.path.endswith("/activities/" + reply.body["replyToId"])
    assert reply.body["text"].startswith("I post Signoff checkpoints that need a decision.")


def test_an_action_submit_fallback_from_an_older_client_is_the_same_click(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)

    world.message("bob", value={"checkpoint_id": cp.id, "verb": "approve"})

    assert [v.approver for v in world.get(cp.id).votes] == ["bob@example.com"]
    (reply,) = world.fake.calls("reply")
    assert reply.body["text"] == "Approval recorded (1 of 2)."


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({}, 400, "This card is not a Signoff checkpoint."),
        ({"checkpoint_id": "cp_00000000000000000000000000"}, 404, "This checkpoint no longer exists."),
    ],
)
def test_an_invoke_for_no_checkpoint_is_an_error_answer(
    world: TeamsWorld, data: dict[str, Any], status: int, message: str
) -> None:
    cp = world.open("soft")
    activity = world.click_activity("dave", cp, "veto")
    activity["value"]["action"]["data"] = data

    body = invoke_value(world.send(activity))

    assert body == {"statusCode": status, "type": "application/vnd.microsoft.error",
                    "value": {"code": {400: "BadRequest", 404: "NotFound"}[status], "message": message}}  # fmt: skip
    assert world.get(cp.id).status is Status.PENDING


def test_a_failure_releases_the_activity_so_the_retry_is_handled(world: TeamsWorld, no_comment: Any) -> None:
    cp = world.open("hard", PUBLIC, policy=no_comment)
    activity = world.click_activity("bob", cp, "approve")
    world.fake.fail("update", 500, times=3)  # the follow-up's card update fails hard

    # When the follow-up (run inline here) fails after the vote was recorded
    with pytest.raises(ConnectorError, match="teams update"):
        world.send(activity)

    # Then the connector's retry does not vote again (nor is refused as a duplicate): the vote stands
    retried = answered_card(world.send(activity))
    assert len(world.get(cp.id).votes) == 1 and notice(retried) == "Your approval (12:00 UTC) is recorded."
    assert _refusals(world, cp) == []


def test_a_failure_before_anything_is_recorded_lets_the_retry_through(world: TeamsWorld, no_comment: Any) -> None:
    # Given a click that fails before the vote is recorded (the table is unavailable)
    cp = world.open("hard", PUBLIC, policy=no_comment)
    activity = world.click_activity("bob", cp, "approve")

    class Unavailable:
        def get(self, checkpoint_id: str) -> Checkpoint:
            raise RuntimeError("table unavailable")

    world.app.repository = Unavailable()  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        world.send(activity)

    # When the table is back, the connector's retry of the same activity is handled in full
    world.app.repository = world.repo
    assert notice(answered_card(world.send(activity))) == "Approval recorded (1 of 2)."
