"""Modal input rules: what a submitted deny, comment, question or conditions form must hold before
anything is recorded, and the lazy half of a click working out what to tell the clicker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff.domain.acts import Act, Actor
from signoff.domain.inputs import parse_not_before
from signoff.surfaces.slack.app import read_click, receipt
from signoff.surfaces.slack.blocks import Form
from signoff.surfaces.slack.forms import read_form
from signoff.testing.memory import FixedClock, InMemoryCheckpointRepository
from signoff.usecases.decisions import DecisionService
from tests.slackfakes import make_checkpoint

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _values(**texts: str | None) -> dict[str, dict[str, dict[str, str | None]]]:
    return {k: {k: {"type": "plain_text_input", "value": v}} for k, v in texts.items()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18:00 UTC", datetime(2026, 1, 1, 18, 0, tzinfo=UTC)),
        ("18:00", datetime(2026, 1, 1, 18, 0, tzinfo=UTC)),
        ("09:30 utc", datetime(2026, 1, 2, 9, 30, tzinfo=UTC)),  # already past today: tomorrow
        ("2026-01-03T18:00Z", datetime(2026, 1, 3, 18, 0, tzinfo=UTC)),
        ("2026-01-03T19:00+01:00", datetime(2026, 1, 3, 18, 0, tzinfo=UTC)),
        ("2026-01-03T18:00", datetime(2026, 1, 3, 18, 0, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_not_before_reads_a_clock_time_or_an_iso_time(text: str, expected: datetime) -> None:
    assert parse_not_before(text, NOW) == expected


@pytest.mark.parametrize(("text", "problem"), [("tonight", "Use HH:MM UTC"), ("2025-12-31T18:00Z", "already passed")])
def test_not_before_refuses_what_it_cannot_read_or_the_past(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_not_before(text, NOW)


def test_conditions_are_normalised() -> None:
    values = _values(not_before="18:00 UTC", note="after the sale") | {
        "canary_percent": {"canary_percent": {"type": "number_input", "value": "5"}}
    }

    form = read_form(Form.CONDITIONS, values, now=NOW, comment_required=False)

    assert form.errors == {}
    assert form.act is Act.APPROVE_WITH_CONDITIONS and form.comment == "after the sale"
    assert form.conditions == {"not_before": "2026-01-01T18:00:00Z", "canary_percent": 5}


@pytest.mark.parametrize(
    ("values", "comment_required", "errors"),
    [
        ({}, False, {"not_before": "Give at least one condition, or use Approve."}),
        ({"canary_percent": "0"}, False, {"canary_percent": "A whole percentage from 1 to 100."}),
        ({"canary_percent": "12.5"}, False, {"canary_percent": "A whole percentage from 1 to 100."}),
        ({"canary_percent": "10"}, True, {"note": "This is a high-risk approval: a comment is required."}),
        (
            {"not_before": "soon"},
            False,
            {"not_before": "Use HH:MM UTC (e.g. 18:00 UTC) or an ISO time (e.g. 2026-01-02T18:00Z)."},
        ),
    ],
)
def test_bad_conditions_go_back_to_the_form(
    values: dict[str, str], comment_required: bool, errors: dict[str, str]
) -> None:
    form = read_form(Form.CONDITIONS, _values(**values), now=NOW, comment_required=comment_required)

    assert form.errors == errors


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (Form.DENY, "reason", "A reason is required to deny."),
        (Form.COMMENT, "comment", "This is a high-risk approval: a comment is required."),
        (Form.INFO, "question", "Write the question for the requester."),
    ],
)
@pytest.mark.parametrize("typed", [None, "", "   \n "])
def test_a_missing_or_blank_text_goes_back_to_the_form(form: Form, field: str, message: str, typed: str | None) -> None:
    assert read_form(form, _values(**{field: typed}), now=NOW, comment_required=True).errors == {field: message}


def test_a_reason_is_kept_stripped() -> None:
    form = read_form(Form.DENY, _values(reason="  clashes with the sale \n"), now=NOW, comment_required=False)

    assert (form.act, form.comment, form.errors) == (Act.DENY, "clashes with the sale", {})


# -- what a click is told, from the state alone ----------------------------------------------------


def _actor(name: str | None) -> Actor:
    person = f"{name}@example.com" if name else None
    return Actor(
        surface="slack", handle=f"slack:T0SIGNOFF/U0{(name or 'x').upper()}", person=person, name=name or "U0X"
    )


def test_receipts_follow_the_checkpoint_state() -> None:
    # Given a two-person checkpoint (comment required) where bob approved
    repo = InMemoryCheckpointRepository()
    cp = make_checkpoint("hard", repo=repo)
    clock = FixedClock()
    decisions = DecisionService(repo, clock, None)
    assert decisions.act(cp.id, _actor("bob"), Act.APPROVE, comment="ok").ok
    cp = repo.get(cp.id)

    # Then bob's (replayed) click reads as recorded, and others get the rule that refuses them
    bob = receipt(cp, _actor("bob"), Act.APPROVE, clock.now())
    assert bob.text == "Your approval (12:00 UTC) is recorded. 1 of 2 approvals so far." and bob.changed
    assert receipt(cp, _actor("bob"), Act.DENY, clock.now()).text == "You already voted (approve at 12:00 UTC)."
    alice = receipt(cp, _actor("alice"), Act.APPROVE, clock.now())
    assert alice.text == "Separation of duties: the requester may not approve their own request." and not alice.changed
    assert receipt(cp, _actor(None), Act.APPROVE, clock.now()).text.startswith("You are not in Signoff's directory")
    # And a click that opened a form has nothing to say yet
    assert receipt(cp, _actor("carol"), Act.DENY, clock.now()).text is None
    # And after the deadline everyone is told it is too late
    late = clock.now() + timedelta(hours=2)
    assert receipt(cp, _actor("carol"), Act.APPROVE, late).text == "Too late: the deadline passed at 13:00 UTC."


def test_only_signoff_buttons_with_a_checkpoint_id_are_clicks() -> None:
    def body(action_id: str, value: str) -> dict[str, object]:
        return {
            "user": {"id": "U0BOB"},
            "team": {"id": "T0SIGNOFF"},
            "actions": [{"action_id": action_id, "value": value}],
        }

    cp_id = "cp_" + "0" * 26
    assert read_click(body("signoff:approve", cp_id)) is not None
    assert read_click(body("signoff:launch_missiles", cp_id)) is None
    assert read_click(body("signoff:approve", "cp_../../etc")) is None
    assert read_click(body("other:approve", cp_id)) is None
