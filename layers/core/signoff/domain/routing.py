"""Routing: the directory of people and roles, who may approve a checkpoint, and where its card
goes (team channel, release channel, escalation route; DMs or private channels for sensitive ones)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from signoff.domain.errors import PolicyError
from signoff.domain.policy import PROBLEMS, Seconds, validation_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackIdentity(_Strict):
    team: str = Field(min_length=1)
    user: str = Field(min_length=1)


class TeamsIdentity(_Strict):
    aad: str = Field(min_length=1, description="Azure AD object id")


class Person(_Strict):
    id: str = Field(min_length=1, description="Stable identity, usually the email; matches requester.id")
    name: str
    slack: SlackIdentity | None = None
    teams: TeamsIdentity | None = None
    manager: str | None = Field(
        default=None, description="Their manager's id: who approves the manager step of their helpdesk requests"
    )


class Channel(_Strict):
    slack: str | None = None
    teams: str | None = None
    private: bool = False


class Role(_Strict):
    members: list[str] = Field(default_factory=list)
    slack_usergroup: str | None = None


class OnCall(_Strict):
    rotation: list[str] = Field(min_length=1)
    start: datetime
    shift: Seconds

    def who(self, at: datetime) -> str:
        elapsed = (at - self.start).total_seconds()
        return self.rotation[int(elapsed // self.shift) % len(self.rotation)] if elapsed >= 0 else self.rotation[0]


class Team(_Strict):
    members: list[str] = Field(default_factory=list)
    leads: list[str] = Field(default_factory=list)
    channel: Channel | None = None
    on_call: OnCall | None = None


class Service(_Strict):
    team: str


class EnvironmentRoute(_Strict):
    channel: Channel | None = None
    approver_roles: list[str] = Field(default_factory=list)


class ActionRoute(_Strict):
    approver_roles: list[str] = Field(min_length=1)


class EscalationRoute(_Strict):
    roles: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    team_leads: bool = False
    channel: Channel | None = None


class Routing(_Strict):
    people: list[Person]
    roles: dict[str, Role] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    environments: dict[str, EnvironmentRoute] = Field(default_factory=dict)
    actions: dict[str, ActionRoute] = Field(default_factory=dict)
    escalation_routes: dict[str, EscalationRoute] = Field(default_factory=dict)
    default_channel: Channel

    @model_validator(mode="after")
    def _references_exist(self) -> Routing:
        """Every person, role and team named anywhere exists; each problem as `path: reason`."""
        known = {p.id for p in self.people}
        problems: list[str] = []
        if len(known) != len(self.people):
            problems.append("people: ids must be unique")

        def people(where: str, ids: list[str]) -> None:
            unknown = sorted(set(ids) - known)
            if unknown:
                problems.append(f"{where}: names people not in `people`: {', '.join(unknown)}")

        def roles(where: str, names: list[str]) -> None:
            unknown = sorted(set(names) - set(self.roles))
            if unknown:
                problems.append(f"{where}: names unknown roles {', '.join(unknown)}")

        for person in self.people:
            people(f"people.{person.id}.manager", [person.manager] if person.manager else [])
        problems += [
            f"people.{p.id}.manager: a person cannot be their own manager" for p in self.people if p.manager == p.id
        ]
        for name, role in self.roles.items():
            people(f"roles.{name}.members", role.members)
        for name, team in self.teams.items():
            people(f"teams.{name}", team.members + team.leads + (team.on_call.rotation if team.on_call else []))
        for name, service in self.services.items():
            if service.team not in self.teams:
                problems.append(f"services.{name}.team: unknown team {service.team!r}")
        for name, env in self.environments.items():
            roles(f"environments.{name}.approver_roles", env.approver_roles)
        for name, action in self.actions.items():
            roles(f"actions.{name}.approver_roles", action.approver_roles)
        for name, route in self.escalation_routes.items():
            roles(f"escalation_routes.{name}.roles", route.roles)
            people(f"escalation_routes.{name}.people", route.people)
        if problems:
            raise ValueError(PROBLEMS + "\n".join(problems))
        return self

    # -- lookups -------------------------------------------------------------------------------

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    def by_slack(self, team: str, user: str) -> Person | None:
        return next((p for p in self.people if p.slack and (p.slack.team, p.slack.user) == (team, user)), None)

    def by_aad(self, aad: str) -> Person | None:
        return next((p for p in self.people if p.teams and p.teams.aad == aad), None)

    def roles_of(self, person_id: str) -> list[str]:
        return sorted(name for name, role in self.roles.items() if person_id in role.members)


class Recipients(BaseModel):
    """Where one notification goes: channels and/or people to DM."""

    model_config = ConfigDict(frozen=True)

    channels: list[Channel] = Field(default_factory=list)
    direct: list[str] = Field(default_factory=list, description="person ids to message directly")


class LoadedRouting(BaseModel):
    model_config = ConfigDict(frozen=True)

    routing: Routing

    def approvers(
        self,
        *,
        service: str,
        environment: str,
        action: str,
        requester: str,
        requester_may_approve: bool,
        escalation_route: str | None,
        at: datetime,
        named: Sequence[str] | None = None,
    ) -> list[str]:
        """Person ids allowed to approve, sorted; the requester removed under separation of duties.
        `named`: the people a request names (a helpdesk form's manager) approve instead of the
        service's team and the environment's roles; the escalation route still applies."""
        r = self.routing
        eligible: set[str] = set()
        if named is not None:
            eligible.update(p for p in named if self.routing.person(p) is not None)
        elif action in r.actions:
            for role in r.actions[action].approver_roles:
                eligible.update(r.roles[role].members)
        else:
            team = r.teams.get(r.services[service].team) if service in r.services else None
            if team:
                eligible.update(team.members + team.leads)
                if team.on_call:
                    eligible.add(team.on_call.who(at))
            env = r.environments.get(environment)
            for role in env.approver_roles if env else []:
                eligible.update(r.roles[role].members)
        if escalation_route and action not in r.actions:
            # A reserved action stays with its roles, escalated or not.
            eligible.update(self.escalation_people(escalation_route, service=service))
        if not requester_may_approve:
            eligible.discard(requester)
        return sorted(eligible)

    def escalation_people(self, route_name: str, *, service: str) -> list[str]:
        r = self.routing
        route = r.escalation_routes.get(route_name)
        if route is None:
            return []
        people = set(route.people)
        for role in route.roles:
            people.update(r.roles[role].members)
        if route.team_leads and service in r.services:
            people.update(r.teams[r.services[service].team].leads)
        return sorted(people)

    def destinations(self, *, service: str, environment: str, sensitive: bool, approvers: list[str]) -> Recipients:
        """The card's home: the environment's channel (production -> release), else the team's,
        else the default. A sensitive checkpoint never goes to a public channel: a private one,
        or each approver directly."""
        r = self.routing
        env = r.environments.get(environment)
        team = r.teams.get(r.services[service].team) if service in r.services else None
        channel = (env.channel if env else None) or (team.channel if team else None) or r.default_channel
        if sensitive and not channel.private:
            return Recipients(direct=approvers)
        return Recipients(channels=[channel])

    def escalation_destinations(self, route_name: str, *, service: str, sensitive: bool) -> Recipients:
        route = self.routing.escalation_routes.get(route_name)
        people = self.escalation_people(route_name, service=service)
        if route is None or route.channel is None or (sensitive and not route.channel.private):
            return Recipients(direct=people)
        return Recipients(channels=[route.channel])


def parse_routing(data: Any, source: str = "routing") -> LoadedRouting:
    if not isinstance(data, dict):
        raise PolicyError(source, ["(top level): the routing file must be a mapping"])
    try:
        return LoadedRouting(routing=Routing.model_validate(data))
    except ValidationError as exc:
        raise PolicyError(source, validation_problems(exc)) from None


def load_routing(path: str | Path) -> LoadedRouting:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_routing(data, source=str(path))
