"""Who clicked, in directory terms. The connector's JWT proves the activity; the activity's
`from.aadObjectId` (Entra object id) says who in the tenant acted, and the routing file says which
directory person that is. Someone the routing file lists without a Teams identity is recognised by
the email or UPN the conversation's member API gives for them (cached for a few minutes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from signoff.domain.acts import Actor
from signoff.domain.routing import LoadedRouting, Person
from signoff.observability import logger
from signoff.surfaces.teams.connector import ConnectorError, UntrustedServiceUrl

SURFACE = "teams"
CACHE_SECONDS = 300.0

Members = Callable[[str, str, str], Mapping[str, Any] | None]  # (service url, conversation, user id)


def base_conversation(conversation_id: str) -> str:
    """A channel thread's id without its `;messageid=…` suffix: the conversation itself."""
    return conversation_id.split(";", 1)[0]


class TeamsDirectory:
    def __init__(
        self,
        routing: LoadedRouting,
        members: Members,
        *,
        ttl_seconds: float = CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routing = routing
        self._members = members
        self._ttl = ttl_seconds
        self._now = monotonic
        self._cache: dict[tuple[str, str], tuple[float, Person | None]] = {}
        self._lock = threading.Lock()

    def actor(self, activity: Mapping[str, Any], tenant_id: str) -> Actor:
        """The Actor DecisionService authorizes; `person` is None for someone the directory does
        not know (every act is then refused and audited under their Teams handle)."""
        sender = activity.get("from") or {}
        aad = str(sender.get("aadObjectId") or "")
        user_id = str(sender.get("id") or "")
        person = self.person(activity, aad=aad, user_id=user_id)
        handle = f"{SURFACE}:{tenant_id}/{aad or user_id or '?'}"
        name = person.name if person else str(sender.get("name") or aad or user_id or "unknown")
        return Actor(surface=SURFACE, handle=handle, person=person.id if person else None, name=name)

    def person(self, activity: Mapping[str, Any], *, aad: str, user_id: str) -> Person | None:
        if aad and (found := self.routing.routing.by_aad(aad)) is not None:
            return found
        if not user_id:
            return None
        conversation = base_conversation(str((activity.get("conversation") or {}).get("id") or ""))
        service_url = str(activity.get("serviceUrl") or "")
        return self._cached((conversation, user_id), lambda: self._by_email(service_url, conversation, user_id))

    def _by_email(self, service_url: str, conversation: str, user_id: str) -> Person | None:
        member = self._members(service_url, conversation, user_id) or {}
        addresses = {str(member.get(k) or "").lower() for k in ("email", "userPrincipalName")} - {""}
        r = self.routing.routing
        # Only people the routing file cannot already place by Entra id: an account with another
        # object id but the same address is not them.
        return next((p for p in r.people if p.teams is None and p.id.lower() in addresses), None)

    def _cached(self, key: tuple[str, str], fetch: Callable[[], Person | None]) -> Person | None:
        now = self._now()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        try:
            found = fetch()  # outside the lock: a slow call must not block other lookups
        except (ConnectorError, UntrustedServiceUrl) as exc:
            # Fail closed and do not cache: nobody is recognised through a lookup that did not answer.
            logger.warning("teams member lookup failed", extra={"error": type(exc).__name__})
            return None
        with self._lock:
            self._cache[key] = (now + self._ttl, found)
        return found
