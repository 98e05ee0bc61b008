"""Routing: who may approve a checkpoint (team, on call, environment roles, escalation route;
action-specific roles only; the requester removed), where its card goes (environment channel, then
team channel, then the default; a sensitive one never to a public channel), and a routing file
that names people, roles or teams that do not exist is refused with every `path: reason`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from signoff.domain.errors import PolicyError
from signoff.domain.routing import Channel, LoadedRouting, Recipients, load_routing, parse_routing
from tests.gates import ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE, ROUTING_PATH, shipped_routing
from tests.helpers import tweak

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # before the on-call rotation starts
ROTATION_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _data() -> dict[str, Any]:
    data = yaml.safe_load(ROUTING_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _routing(changes: dict[str, Any]) -> LoadedRouting:
    return parse_routing(tweak(_data(), changes), source="test-routing")


def _approvers(
    routing: LoadedRouting | None = None,
    *,
    service: str = "service-api",
    environment: str = "production",
    action: str = "deploy",
    requester: str = ALICE,
    requester_may_approve: bool = False,
    escalation_route: str | None = None,
    at: datetime = AT,
) -> list[str]:
    return (routing or shipped_routing()).approvers(
        service=service,
        environment=environment,
        action=action,
        requester=requester,
        requester_may_approve=requester_may_approve,
        escalation_route=escalation_route,
        at=at,
    )


# -- approvers ---------------------------------------------------------------------------------


def test_production_approvers_are_the_team_and_the_release_manager_without_the_requester() -> None:
    # Given a production deploy of service-api requested by alice (a payments member)
    # When the approvers are computed
    approvers = _approvers(escalation_route="release-managers")
    # Then the team, its lead and the release manager may approve; alice may not
    assert approvers == [BOB, CAROL, DAVE, GRACE]
    assert ALICE not in approvers


def test_the_requester_stays_when_the_gate_lets_them_approve() -> None:
    assert ALICE in _approvers(requester_may_approve=True)


def test_a_pipeline_requester_removes_nobody() -> None:
    assert _approvers(requester="release-pipeline") == [ALICE, BOB, CAROL, DAVE, GRACE]


def test_the_escalation_route_people_may_approve() -> None:
    # Given the docs team (bob, lead grace) in staging, where no environment role applies
    base = _approvers(service="docs-site", environment="staging", requester="docs-bot")
    assert base == [BOB, GRACE]
    # When the gate escalates to the release managers
    escalated = _approvers(
        service="docs-site", environment="staging", requester="docs-bot", escalation_route="release-managers"
    )
    # Then the release manager joins the approvers
    assert escalated == [BOB, CAROL, GRACE]


def test_team_leads_route_adds_the_owning_team_leads() -> None:
    routing = _routing({"teams.docs.leads": [FRANK]})
    assert _approvers(routing, service="docs-site", environment="staging", requester="bot") == [BOB, FRANK]
    with_route = _approvers(
        routing, service="docs-site", environment="staging", requester="bot", escalation_route="team-leads"
    )
    assert with_route == [BOB, FRANK]
    assert shipped_routing().escalation_people("team-leads", service="docs-site") == [GRACE]
    assert routing.escalation_people("team-leads", service="docs-site") == [FRANK]
    assert routing.escalation_people("no-such-route", service="docs-site") == []


@pytest.mark.parametrize(("action", "officer"), [("rotate-secret", ERIN), ("export-data", FRANK)])
def test_an_action_with_its_own_roles_is_approved_by_those_roles_only(action: str, officer: str) -> None:
    # Given a production action that routing reserves for a role
    # When the approvers are computed
    approvers = _approvers(action=action)
    # Then only that role's members may approve: not the team, not the release manager
    assert approvers == [officer]


def test_an_unknown_service_falls_back_to_environment_roles() -> None:
    assert _approvers(service="mystery", environment="production") == [CAROL]
    assert _approvers(service="mystery", environment="dev") == []


@pytest.mark.parametrize(
    ("at", "on_call"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), DAVE),  # before the rotation starts: the first person
        (ROTATION_START, DAVE),
        (datetime(2026, 1, 12, 8, 59, tzinfo=UTC), DAVE),
        (datetime(2026, 1, 12, 9, 0, tzinfo=UTC), BOB),
        (datetime(2026, 1, 18, 23, 0, tzinfo=UTC), BOB),
        (datetime(2026, 1, 19, 9, 0, tzinfo=UTC), DAVE),
        (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), DAVE),  # 8 weeks later
        (datetime(2026, 3, 9, 9, 0, tzinfo=UTC), BOB),
    ],
)
def test_the_on_call_rotation_changes_every_week(at: datetime, on_call: str) -> None:
    # Given a routing where the payments on-call rotation is dave then frank (not a team member)
    rotation = shipped_routing().routing.teams["payments"].on_call
    assert rotation is not None
    assert rotation.who(at) == on_call
    routing = _routing({"teams.payments.on_call.rotation": [DAVE, FRANK]})
    # When approvers are computed at different times
    # Then the person on call that week is one of them
    expected_extra = FRANK if on_call == BOB else None
    approvers = _approvers(routing, environment="staging", at=at)
    assert approvers == sorted([BOB, DAVE, GRACE] + ([expected_extra] if expected_extra else []))


# -- destinations ------------------------------------------------------------------------------


def test_the_environment_channel_beats_the_team_channel() -> None:
    where = shipped_routing().destinations(
        service="service-api", environment="production", sensitive=False, approvers=[BOB]
    )
    assert where == Recipients(channels=[Channel(slack="C0RELEASE", private=False)])


def test_the_team_channel_beats_the_default() -> None:
    where = shipped_routing().destinations(
        service="service-api", environment="staging", sensitive=False, approvers=[BOB]
    )
    assert where.channels == [Channel(slack="C0PAYMENTS", private=False)] and where.direct == []


@pytest.mark.parametrize(
    ("routing_changes", "service"),
    [({}, "unknown-service"), ({"teams.docs.channel": None}, "docs-site")],
    ids=["unknown-service", "team-without-channel"],
)
def test_the_default_channel_is_the_last_resort(routing_changes: dict[str, Any], service: str) -> None:
    routing = _routing(routing_changes) if routing_changes else shipped_routing()
    where = routing.destinations(service=service, environment="staging", sensitive=False, approvers=[BOB])
    assert where.channels == [Channel(slack="C0SIGNOFF", private=False)]


def test_a_sensitive_checkpoint_skips_a_public_channel_for_direct_messages() -> None:
    approvers = [BOB, CAROL, DAVE, GRACE]
    where = shipped_routing().destinations(
        service="service-api", environment="production", sensitive=True, approvers=approvers
    )
    assert where == Recipients(channels=[], direct=approvers)


def test_a_sensitive_checkpoint_may_use_a_private_channel() -> None:
    routing = _routing({"environments.production.channel.private": True})
    where = routing.destinations(service="service-api", environment="production", sensitive=True, approvers=[BOB])
    assert where == Recipients(channels=[Channel(slack="C0RELEASE", private=True)])


def test_escalation_destinations_follow_the_same_rule() -> None:
    routing = shipped_routing()
    # the release managers' channel is public
    public = routing.escalation_destinations("release-managers", service="service-api", sensitive=False)
    assert public.channels == [Channel(slack="C0RELEASE", private=False)]
    assert routing.escalation_destinations("release-managers", service="service-api", sensitive=True) == Recipients(
        direct=[CAROL]
    )
    # the team leads' channel is private: fine even for a sensitive checkpoint
    private = routing.escalation_destinations("team-leads", service="service-api", sensitive=True)
    assert private == Recipients(channels=[Channel(slack="C0LEADS", private=True)])


def test_an_escalation_route_without_a_channel_messages_its_people() -> None:
    routing = _routing({"escalation_routes.release-managers.channel": None})
    where = routing.escalation_destinations("release-managers", service="service-api", sensitive=False)
    assert where == Recipients(direct=[CAROL])


# -- the routing file --------------------------------------------------------------------------


def test_the_shipped_routing_file_is_valid_and_knows_every_person() -> None:
    routing = load_routing(ROUTING_PATH).routing
    assert routing.by_slack("T0SIGNOFF", "U0CAROL") == routing.person(CAROL)
    assert routing.by_aad("55555555-5555-4555-8555-555555555555") == routing.person(ERIN)
    assert routing.by_slack("T0OTHER", "U0CAROL") is None
    assert routing.roles_of(CAROL) == ["release-manager"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"teams.payments.members": [ALICE, "zed@example.com"]},
            "teams.payments: names people not in `people`: zed@example.com",
        ),
        (
            {"environments.production.approver_roles": ["release-manager", "change-board"]},
            "environments.production.approver_roles: names unknown roles change-board",
        ),
        (
            {"actions.rotate-secret.approver_roles": ["ciso"]},
            "actions.rotate-secret.approver_roles: names unknown roles ciso",
        ),
        ({"escalation_routes.team-leads.roles": ["vp"]}, "escalation_routes.team-leads.roles: names unknown roles vp"),
        (
            {"roles.data-steward.members": ["ghost@example.com"]},
            "roles.data-steward.members: names people not in `people`: ghost@example.com",
        ),
        ({"services.service-api.team": "platform"}, "services.service-api.team: unknown team 'platform'"),
        ({"people.7": {"id": BOB, "name": "Bob again"}}, "people: ids must be unique"),  # mallory's entry
        (
            {"default_channel": "C0SIGNOFF"},
            "default_channel: Input should be a valid dictionary or instance of Channel",
        ),
        ({"people.0.nickname": "Ali"}, "people[0].nickname: Extra inputs are not permitted"),
        (
            {"people.0.manager": "boss@example.com"},
            "people.alice@example.com.manager: names people not in `people`: boss@example.com",
        ),
        (
            {"people.0.manager": "alice@example.com"},
            "people.alice@example.com.manager: a person cannot be their own manager",
        ),
    ],
    ids=[
        "unknown-person",
        "unknown-env-role",
        "unknown-action-role",
        "unknown-route-role",
        "unknown-role-member",
        "unknown-team",
        "duplicate-person",
        "bad-channel",
        "unknown-field",
        "unknown-manager",
        "own-manager",
    ],
)
def test_an_invalid_routing_file_names_the_path_and_the_reason(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_routing(tweak(_data(), changes), source="routing.yaml")
    assert caught.value.problems == [problem]
    assert problem in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    data = tweak(
        _data(),
        {
            "teams.payments.members": [ALICE, "zed@example.com"],
            "environments.production.approver_roles": ["change-board"],
            "services.checkout.team": "platform",
        },
    )
    data["people"].append({"id": CAROL, "name": "Carol twin"})
    with pytest.raises(PolicyError) as caught:
        parse_routing(data, source="routing.yaml")
    assert sorted(caught.value.problems) == sorted(
        [
            "people: ids must be unique",
            "teams.payments: names people not in `people`: zed@example.com",
            "services.checkout.team: unknown team 'platform'",
            "environments.production.approver_roles: names unknown roles change-board",
        ]
    )
    assert caught.value.source == "routing.yaml"


@pytest.mark.parametrize(
    ("text", "problem"),
    [("- just\n- a list\n", "(top level): the routing file must be a mapping"), ("people: [\n", "not valid YAML")],
)
def test_a_routing_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_routing(path)
    assert caught.value.problems[0].startswith(problem)


def test_a_missing_routing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_routing(tmp_path / "absent.yaml")
    assert caught.value.problems[0].startswith("cannot read the file")


def test_a_reserved_action_stays_reserved_when_the_gate_escalates() -> None:
    # Given a production secret rotation on a gate that escalates to the release managers
    # When the approvers are computed as intake does (with the gate's escalation route)
    approvers = _approvers(action="rotate-secret", escalation_route="release-managers")
    # Then only the security officer may approve it
    assert approvers == [ERIN]
