"""Who clicked, in directory terms. Slack proves (by its signature) which workspace user acted;
the routing file says which directory person that is. Someone the routing file knows only as a
role member, with the role mapped to a Slack user group, is recognised by group membership plus
the email on their Slack profile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.domain.acts import Actor
from signoff.domain.routing import LoadedRouting, Person
from signoff.observability import logger

SURFACE = "slack"
CACHE_SECONDS = 300.0  # usergroups.users.list is Tier 2 (about 20 calls a minute): cache it


class SlackDirectory:
    """Maps (enterprise or team, user) to a directory person and back; Web API lookups are cached
    for a few minutes (a removed group member keeps access at most that long)."""

    def __init__(
        self,
        routing: LoadedRouting,
        client: WebClient,
        *,
        ttl_seconds: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routing = routing
        self.client = client
        self.ttl = ttl_seconds
        self._now = monotonic
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def actor(self, *, enterprise: str | None, team: str | None, user: str) -> Actor:
        """The Actor DecisionService authorizes; `person` is None for someone the directory does
        not know (every act is then refused and audited under their Slack handle)."""
        person = self.person(enterprise=enterprise, team=team, user=user)
        handle = f"{SURFACE}:{enterprise or team or '?'}/{user}"
        return Actor(
            surface=SURFACE, handle=handle, person=person.id if person else None, name=person.name if person else user
        )

    def person(self, *, enterprise: str | None, team: str | None, user: str) -> Person | None:
        r = self.routing.routing
        # Enterprise Grid: the org id is the stable key; a plain workspace has only its team id.
        for key in (enterprise, team):
            if key and (found := r.by_slack(key, user)) is not None:
                return found
        return self._by_group(user)

    def _by_group(self, user: str) -> Person | None:
        r = self.routing.routing
        candidates: set[str] = set()
        for role in r.roles.values():
            if role.slack_usergroup and user in self._group(role.slack_usergroup):
                # Only members the routing file cannot already place by Slack id.
                candidates.update(m for m in role.members if (p := r.person(m)) is not None and p.slack is None)
        if not candidates:
            return None
        email = self._email(user)
        match = next((c for c in sorted(candidates) if email and c.lower() == email.lower()), None)
        return r.person(match) if match else None

    def slack_user(self, person_id: str) -> str | None:
        """The Slack user id of a directory person (to DM or mention them)."""
        person = self.routing.routing.person(person_id)
        if person is None:
            return None
        if person.slack is not None:
            return person.slack.user
        if "@" not in person.id:
            return None
        found = self._cached(("email", person.id), lambda: self.client.users_lookupByEmail(email=person.id))
        user_id = (found.get("user") or {}).get("id")
        return user_id if isinstance(user_id, str) else None

    # -- Web API, cached ---------------------------------------------------------------------------

    def _group(self, usergroup: str) -> frozenset[str]:
        found = self._cached(("group", usergroup), lambda: self.client.usergroups_users_list(usergroup=usergroup))
        return frozenset(found.get("users") or [])

    def _email(self, user: str) -> str | None:
        found = self._cached(("user", user), lambda: self.client.users_info(user=user))
        email = ((found.get("user") or {}).get("profile") or {}).get("email")  # needs users:read.email
        return email if isinstance(email, str) else None

    def _cached(self, key: tuple[str, str], fetch: Callable[[], Any]) -> dict[str, Any]:
        """The Web API answer for `key`, at most `ttl` old. A failed call is not cached and counts
        as an empty answer: fail closed, nobody is recognised through a lookup Slack refused."""
        now = self._now()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return dict(hit[1])
        try:
            data = dict(fetch().data)  # outside the lock: a slow call must not block other lookups
        except SlackApiError as exc:
            logger.warning("slack lookup failed", extra={"lookup": key[0], "error": error_code(exc)})
            return {}
        with self._lock:
            self._cache[key] = (now + self.ttl, data)
        return data


def error_code(exc: SlackApiError) -> str:
    """Slack's error code only: the response may echo request data."""
    response = exc.response
    return str(response.get("error") if response is not None else "unknown")
