"""Microsoft Teams end to end on the local stack: the CDK app synthesized with the Teams bot
(SIGNOFF_TEAMS=1) and a routing file naming a Teams conversation on every channel, so each card
goes to Slack and to Teams. The local stack runs a fake Bot Connector (token endpoint, JWKS,
conversations) and installs the bot in every routed Teams channel at start.

Everything goes through HTTP: card clicks are invoke activities built with local.fake_teams'
builders, signed by the stack's fake connector (its key lives in the stack's process, so the
sandbox mints the JWT: POST /sandbox/api/teams/token) and posted to the very route the Bot
Connector calls, POST /v1/teams/messages. What Teams shows comes from GET /sandbox/api/state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local.fake_teams import APP_ID, Conversation, TeamsUser, bearer_headers, invoke_action
from tests.e2e.conftest import FAST_POLICY, ROOT, LocalSignoff, eventually, expiring_review, start_local
from tests.e2e.test_gates_e2e import buttons, create, decided, finalized, sample, types

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("teams")]

ROUTING = ROOT / "tests" / "e2e" / "routing-teams.yaml"
RELEASE = "19:release@thread.tacv2"  # the production environment's Teams channel (C0RELEASE on Slack)
TEAMS_PATH = "/v1/teams/messages"


@pytest.fixture(scope="module")
def signoff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSignoff]:
    """A local stack of its own: with the Teams bot, the Teams routing file and the fast policy."""
    yield from start_local(
        tmp_path_factory, SIGNOFF_TEAMS="1", SIGNOFF_ROUTING=str(ROUTING), SIGNOFF_POLICY=str(FAST_POLICY)
    )


# -- what Teams shows, and acting in it ----------------------------------------------------------------


def teams(signoff: LocalSignoff) -> dict[str, Any]:
    state: dict[str, Any] = signoff.slack()["teams"]
    return state


def teams_cards(signoff: LocalSignoff, checkpoint_id: str) -> list[dict[str, Any]]:
    """Every Teams activity (with its conversation) whose card names this checkpoint."""
    found = []
    for conversation, activities in teams(signoff)["conversations"].items():
        for activity in activities:
            if activity["card"] is not None and checkpoint_id in activity["text"]:
                found.append({**activity, "conversation": conversation})
    return found


def teams_posted(signoff: LocalSignoff, checkpoint_id: str) -> list[dict[str, Any]]:
    cards: list[dict[str, Any]] = eventually(lambda: teams_cards(signoff, checkpoint_id))
    return cards


def user(signoff: LocalSignoff, person: str) -> TeamsUser:
    """A Teams user of the directory; anyone else gets a made-up Entra id."""
    known = next((p for p in teams(signoff)["people"] if p["id"] == person), None)
    if known is not None:
        return TeamsUser(known["aad"], known["name"], person)
    return TeamsUser(f"00000000-0000-4000-8000-{uuid.uuid4().int % 10**12:012d}", person.split("@")[0], person)


def click_activity(
    signoff: LocalSignoff,
    person: str,
    checkpoint_id: str,
    verb: str,
    inputs: dict[str, Any] | None = None,
    *,
    tenant: str | None = None,
) -> dict[str, Any]:
    """The invoke Teams sends when `person` clicks `verb` on the checkpoint's channel card."""
    state = teams(signoff)
    card = next(c for c in teams_cards(signoff, checkpoint_id) if c["conversation"] == RELEASE)
    conversation = Conversation(RELEASE, "channel", team_id=state["team"], tenant=tenant or state["tenant"])
    data = {"checkpoint_id": checkpoint_id, **(inputs or {})}
    return invoke_action(
        user(signoff, person), conversation, verb, data, service_url=state["service_url"], reply_to=card["id"],
        app_id=state["app_id"],
    )  # fmt: skip


def token(signoff: LocalSignoff, activity: dict[str, Any], **mint: Any) -> str:
    """The fake connector's JWT for the activity (`mint`: audience, expires_in, issuer, ...)."""
    reply = signoff.call("POST", "/sandbox/api/teams/token", {"activity": activity, **mint})
    assert reply.status == 200, reply.body
    return str(reply.body["token"])


def send(signoff: LocalSignoff, activity: dict[str, Any], jwt: str | None = None, **mint: Any) -> tuple[int, Any]:
    """POST /v1/teams/messages as the Bot Connector does."""
    jwt = jwt if jwt is not None else token(signoff, activity, **mint)
    reply = signoff.call("POST", TEAMS_PATH, json.dumps(activity).encode(), bearer_headers(jwt))
    return reply.status, reply.body


def click(
    signoff: LocalSignoff, person: str, checkpoint_id: str, verb: str, inputs: dict[str, Any] | None = None
) -> str:
    """Click and return what the answered card tells the clicker (its notice on top)."""
    status, body = send(signoff, click_activity(signoff, person, checkpoint_id, verb, inputs))
    assert status == 200, body
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    return str(body["value"]["body"][0]["text"]).replace("\\", "")


def production(**risk: Any) -> dict[str, Any]:
    """A non-sensitive production deploy: the two-person gate (2 approvals, comments), release channel."""
    return sample("hard", data_sensitivity="internal", **risk)


def slack_outcome(signoff: LocalSignoff, checkpoint_id: str, word: str) -> list[dict[str, Any]]:
    """The Slack cards once they show the outcome without buttons."""
    cards: list[dict[str, Any]] = eventually(
        lambda: [c for c in signoff.cards(checkpoint_id) if not buttons(c) and word in json.dumps(c["blocks"])]
    )
    return cards


def teams_outcome(signoff: LocalSignoff, checkpoint_id: str, word: str) -> list[dict[str, Any]]:
    """The Teams cards once they show the outcome without buttons."""
    cards: list[dict[str, Any]] = eventually(
        lambda: [c for c in teams_cards(signoff, checkpoint_id) if not c["verbs"] and word in c["text"]]
    )
    return cards


# -- hard gate, 2 of N -----------------------------------------------------------------------------------


def test_two_of_n_approved_by_two_teams_clicks_and_both_surfaces_show_it(signoff: LocalSignoff) -> None:
    # Given a two-person checkpoint routed to the release channel on Slack and on Teams
    cp = create(signoff, production())
    assert cp["assessment"]["gate"]["approvals_required"] == 2
    [card] = teams_posted(signoff, cp["id"])
    assert card["conversation"] == RELEASE and "approve" in card["verbs"]
    assert {c["channel"] for c in eventually(lambda: signoff.cards(cp["id"]))} == {"C0RELEASE"}
    # When carol approves on Teams with a comment
    assert "1 of 2" in click(signoff, "carol@example.com", cp["id"], "approve", {"comment": "window ok"})
    # Then it is still pending with her vote
    now = signoff.checkpoint(cp["id"])
    assert now["status"] == "PENDING" and [v["approver"] for v in now["votes"]] == ["carol@example.com"]
    # When dave approves too
    assert "approved" in click(signoff, "dave@example.com", cp["id"], "approve", {"comment": "canary fine"})
    # Then it is approved by both, with their comments
    final = decided(signoff, cp["id"])
    assert final["status"] == "APPROVED"
    assert sorted((v["approver"], v["comment"]) for v in final["votes"]) == [
        ("carol@example.com", "window ok"),
        ("dave@example.com", "canary fine"),
    ]
    assert finalized(signoff, cp["id"])["status"] == "SUCCEEDED"
    # And the Teams card and the Slack card both show the outcome, without buttons
    assert teams_outcome(signoff, cp["id"], "Approved")
    assert slack_outcome(signoff, cp["id"], "Approved")


def test_the_requester_and_an_outsider_are_refused_and_audited(signoff: LocalSignoff) -> None:
    cp = create(signoff, production())
    teams_posted(signoff, cp["id"])
    # When the requester, mallory (in the directory, not an approver) and someone unknown click Approve
    by_requester = click(signoff, "alice@example.com", cp["id"], "approve", {"comment": "mine"})
    by_outsider = click(signoff, "mallory@example.com", cp["id"], "approve", {"comment": "let me"})
    by_stranger = click(signoff, "stranger@elsewhere.example", cp["id"], "approve", {"comment": "hi"})
    # Then each is told why, nothing is approved, and every attempt is in the audit trail
    assert "Separation of duties" in by_requester
    assert "not an approver" in by_outsider
    assert by_stranger
    now = signoff.checkpoint(cp["id"])
    assert now["status"] == "PENDING" and now["votes"] == []
    refused = [e["data"] for e in signoff.events(cp["id"]) if e["type"] == "refused"]
    assert [(r["person"], r["refusal"], r["unauthorized"]) for r in refused[:2]] == [
        ("alice@example.com", "requester", True),
        ("mallory@example.com", "unauthorized", True),
    ]
    assert len(refused) == 3 and refused[2]["unauthorized"] is True
    assert "voted" not in types(signoff, cp["id"])


def test_deny_needs_a_reason_and_then_denies(signoff: LocalSignoff) -> None:
    cp = create(signoff, production())
    teams_posted(signoff, cp["id"])
    # A deny without a reason is refused on the card itself, and nothing is recorded
    click(signoff, "grace@example.com", cp["id"], "deny", {"reason": ""})
    assert signoff.checkpoint(cp["id"])["status"] == "PENDING"
    assert "voted" not in types(signoff, cp["id"])
    # With a reason it is denied, the workflow ends, and both surfaces show it
    click(signoff, "grace@example.com", cp["id"], "deny", {"reason": "migration overlaps the sale"})
    final = decided(signoff, cp["id"])
    assert final["status"] == "DENIED" and final["votes"][0]["comment"] == "migration overlaps the sale"
    assert finalized(signoff, cp["id"])["status"] == "SUCCEEDED"
    assert teams_outcome(signoff, cp["id"], "Denied")
    assert slack_outcome(signoff, cp["id"], "Denied")


def test_a_retried_invoke_adds_no_vote(signoff: LocalSignoff) -> None:
    cp = create(signoff, production())
    teams_posted(signoff, cp["id"])
    activity = click_activity(signoff, "carol@example.com", cp["id"], "approve", {"comment": "ok"})
    jwt = token(signoff, activity)
    first = send(signoff, activity, jwt)
    # The connector delivers the very same activity (same id) again
    again = send(signoff, activity, jwt)
    assert first[0] == 200 and again[0] == 200
    assert again[1]["type"] == "application/vnd.microsoft.card.adaptive"
    now = signoff.checkpoint(cp["id"])
    assert now["status"] == "PENDING" and len(now["votes"]) == 1
    assert types(signoff, cp["id"]).count("voted") == 1


def notified(signoff: LocalSignoff, checkpoint_id: str) -> list[str]:
    """The trail once Notify has recorded `notified` (every surface has its card): from then on only
    a click can change it. Read earlier, Notify's own event could land after the snapshot."""

    def settled() -> list[str] | None:
        trail = types(signoff, checkpoint_id)
        return trail if "notified" in trail else None

    found: list[str] = eventually(settled)
    return found


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("wrong audience", 401),
        ("wrong issuer", 401),
        ("expired token", 401),
        ("foreign signing key", 401),
        ("serviceUrl mismatch", 401),
        ("missing msteams endorsement", 401),
    ],
)
def test_bad_tokens_are_refused_and_change_nothing(signoff: LocalSignoff, case: str, status: int) -> None:
    cp = create(signoff, production())
    teams_posted(signoff, cp["id"])
    before = notified(signoff, cp["id"])
    activity = click_activity(signoff, "carol@example.com", cp["id"], "approve", {"comment": "ok"})
    mint: dict[str, Any] = {
        "wrong audience": {"audience": "00000000-0000-4000-8000-0000000000ff"},
        "wrong issuer": {"issuer": "https://login.example.com"},
        "expired token": {"expires_in": -3600},  # an hour ago: beyond the 5 min leeway
        "serviceUrl mismatch": {"service_url": "https://smba.trafficmanager.net/elsewhere/"},
        "missing msteams endorsement": {"endorse": False},  # a published key, endorsed for another channel
    }.get(case, {})
    if case == "foreign signing key":
        answer = send(signoff, activity, jwt=_foreign_token(activity))
    else:
        answer = send(signoff, activity, **mint)
    assert answer[0] == status, answer
    now = signoff.checkpoint(cp["id"])
    assert now["status"] == "PENDING" and now["votes"] == []
    assert types(signoff, cp["id"]) == before


def test_a_foreign_tenant_is_turned_away_and_audited_but_decides_nothing(signoff: LocalSignoff) -> None:
    # A genuine Bot Framework token for an activity from a tenant that is not this deployment's
    cp = create(signoff, production())
    teams_posted(signoff, cp["id"])
    before = notified(signoff, cp["id"])
    foreign = "0badbad0-0000-4000-8000-000000000bad"
    activity = click_activity(signoff, "carol@example.com", cp["id"], "approve", {"comment": "ok"}, tenant=foreign)
    answer = send(signoff, activity)
    # Answered with an invoke error (never a server error), no vote, and one audited refusal
    assert answer[0] == 200 and answer[1]["statusCode"] == 403, answer
    now = signoff.checkpoint(cp["id"])
    assert now["status"] == "PENDING" and now["votes"] == []
    assert types(signoff, cp["id"]) == [*before, "refused"]
    refused = signoff.events(cp["id"])[-1]["data"]
    assert refused["refusal"] == "unknown_workspace" and refused["handle"].startswith(f"teams:{foreign}/")


def test_decided_once_on_teams_updates_the_slack_card_too(signoff: LocalSignoff) -> None:
    # A one-approver gate without a comment: 'review' (low risk, low confidence), on both surfaces
    body = sample("soft")
    body["signals"]["model_confidence"] = 0.1
    body["risk"]["blast_radius_pct"] = 1
    cp = create(signoff, body)
    assert cp["assessment"]["gate"]["profile"] == "review"
    [card] = teams_posted(signoff, cp["id"])
    slack_cards = eventually(lambda: signoff.cards(cp["id"]))
    assert slack_cards and all(buttons(c) for c in slack_cards)
    # When grace approves on Teams
    status, answer = send(signoff, _click_on(signoff, card, "grace@example.com", cp["id"], "approve"))
    assert status == 200, answer
    # Then it is decided once, and both the Teams and the Slack card show it without buttons
    assert decided(signoff, cp["id"])["status"] == "APPROVED"
    assert types(signoff, cp["id"]).count("decided") == 1
    assert teams_outcome(signoff, cp["id"], "Approved")
    assert slack_outcome(signoff, cp["id"], "Approved")
    # And a late click on Slack changes nothing
    late = signoff.act("bob@example.com", cp["id"], "approve")
    assert "Already decided" in json.dumps(late["ephemerals"])
    assert len(signoff.checkpoint(cp["id"])["votes"]) == 1


def _click_on(signoff: LocalSignoff, card: dict[str, Any], person: str, checkpoint_id: str, verb: str) -> Any:
    """The invoke for a click on this very card (whichever conversation it is in)."""
    state = teams(signoff)
    kind = "personal" if card["conversation"].startswith("a:") else "channel"
    team = state["team"] if kind == "channel" else None
    conversation = Conversation(card["conversation"], kind, team_id=team, tenant=state["tenant"])
    return invoke_action(
        user(signoff, person), conversation, verb, {"checkpoint_id": checkpoint_id},
        service_url=state["service_url"], reply_to=card["id"], app_id=state["app_id"],
    )  # fmt: skip


def test_a_teams_click_after_the_decision_says_already_decided(signoff: LocalSignoff) -> None:
    body = sample("soft")
    body["signals"]["model_confidence"] = 0.1  # a one-approver hard gate, posted to the team channel
    cp = create(signoff, body)
    card = teams_posted(signoff, cp["id"])[0]
    first = send(signoff, _click_on(signoff, card, "grace@example.com", cp["id"], "approve"))
    assert first[0] == 200
    assert decided(signoff, cp["id"])["status"] == "APPROVED"
    status, late = send(signoff, _click_on(signoff, card, "bob@example.com", cp["id"], "approve"))
    assert status == 200 and "Already decided" in json.dumps(late)
    assert types(signoff, cp["id"]).count("voted") == 1


def test_a_soft_gate_vetoed_in_teams_is_denied(signoff: LocalSignoff) -> None:
    cp = create(signoff, sample("soft"))
    card = teams_posted(signoff, cp["id"])[0]
    status, _ = send(signoff, _click_on(signoff, card, "bob@example.com", cp["id"], "veto"))
    assert status == 200
    assert decided(signoff, cp["id"])["status"] == "DENIED"


def test_a_sensitive_checkpoint_reaches_teams_people_directly_never_a_channel(signoff: LocalSignoff) -> None:
    cp = create(signoff, sample("hard", data_sensitivity="restricted"))
    cards = teams_posted(signoff, cp["id"])
    finalized_cards = eventually(lambda: len(teams_cards(signoff, cp["id"])) >= 4 and teams_cards(signoff, cp["id"]))
    assert cards and all(c["conversation"].startswith("a:") for c in finalized_cards)
    assert not any(c["conversation"].startswith("19:") for c in finalized_cards)


def test_nobody_answers_the_escalation_reaches_the_teams_leads_channel_then_it_expires(signoff: LocalSignoff) -> None:
    cp = create(signoff, expiring_review(sample("soft")))  # 'review-6s': nobody clicks it
    assert eventually(
        lambda: [c for c in teams_cards(signoff, cp["id"]) if c["conversation"] == "19:leads@thread.tacv2"]
    )
    final = decided(signoff, cp["id"])
    assert final["status"] == "EXPIRED"
    finalized(signoff, cp["id"])
    # every Teams card, the escalation notice included, ends without buttons
    assert eventually(lambda: all(not c["verbs"] for c in teams_cards(signoff, cp["id"])))


def _foreign_token(activity: dict[str, Any]) -> str:
    """A well-formed connector token signed by a key nobody published (the stack's JWKS refetch
    finds no such kid)."""
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": "https://api.botframework.com",
        "aud": APP_ID,  # the right bot: only the key is wrong
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "serviceurl": activity["serviceUrl"],
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "not-a-published-key"})
