"""Who may call POST /v1/teams/messages: the Bot Connector, proven by the RS256 JWT in
`Authorization: Bearer`, for this bot, on behalf of an allowed tenant.

The checks follow the Bot Framework's channel-to-bot authentication: a key from the connector's
JWKS (cached, refetched at most once a minute when an unknown `kid` shows up, so a key rollover
is picked up and a flood of made-up kids is not a flood of fetches); `iss` is the connector;
`aud` is our app id; `exp`/`nbf` within 5 minutes of leeway; the signing key endorsed for
`msteams`; the `serviceurl` claim equal to the activity's serviceUrl (so a valid token cannot
send our bot token elsewhere); and the activity's tenant on the allow-list.

Each failure is a typed error carrying its HTTP status; none of them records anything. The token
itself is never logged, not even in part."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from signoff.adapters.http_out import no_redirect_opener
from signoff.domain.errors import SignoffError
from signoff.observability import logger

ISSUER = "https://api.botframework.com"
DEFAULT_JWKS_URL = "https://login.botframework.com/v1/.well-known/keys"
CHANNEL = "msteams"  # the endorsement a signing key needs to vouch for Teams activities
ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 300
KEYS_TTL_SECONDS = 24 * 3600  # the connector rolls keys over days; a day-old copy is fresh enough
REFETCH_INTERVAL_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 3.0  # inside the 5 s the connector waits for an invoke answer


class TeamsAuthError(SignoffError):
    """A request the bot must not act on. `status` is the HTTP answer; `reason` is a short code
    for logs (never the token)."""

    status = 401
    reason = "unauthenticated"


class MalformedToken(TeamsAuthError):
    reason = "malformed_token"


class ExpiredToken(TeamsAuthError):
    reason = "expired_token"


class ForeignKey(TeamsAuthError):
    """Signed by a key the connector does not publish (or not signed by the key it names)."""

    reason = "foreign_key"


class WrongIssuer(TeamsAuthError):
    reason = "wrong_issuer"


class WrongAudience(TeamsAuthError):
    reason = "wrong_audience"


class MissingEndorsement(TeamsAuthError):
    reason = "missing_endorsement"


class ServiceUrlMismatch(TeamsAuthError):
    reason = "service_url_mismatch"


class TenantNotAllowed(TeamsAuthError):
    status = 403
    reason = "tenant_not_allowed"


class KeysUnavailable(TeamsAuthError):
    """The JWKS could not be read and no copy is cached: nothing can be verified. 503, so the
    connector retries instead of giving up on a genuine activity."""

    status = 503
    reason = "keys_unavailable"


# -- signing keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: jwt.PyJWK
    endorsements: frozenset[str]


Fetch = Callable[[str], Mapping[str, Any]]


def fetch_json(url: str) -> Mapping[str, Any]:
    """GET a JSON document (the JWKS). No redirects are followed and no credentials are sent."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with no_redirect_opener().open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        data = json.loads(response.read())
    if not isinstance(data, dict):
        raise ValueError("the JWKS is not a JSON object")
    return data


class SigningKeys:
    """The connector's published keys by kid, cached for a day; an unknown kid triggers one
    refetch, at most every REFETCH_INTERVAL_SECONDS."""

    def __init__(
        self,
        url: str = DEFAULT_JWKS_URL,
        *,
        fetch: Fetch = fetch_json,
        ttl_seconds: float = KEYS_TTL_SECONDS,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._interval = refetch_interval
        self._now = monotonic
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, kid: str) -> SigningKey | None:
        with self._lock:
            now = self._now()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
            if (stale or kid not in self._keys) and self._may_fetch(now):
                self._refresh(now)
            return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        # With no keys at all every request may try (nothing works otherwise); with keys, an
        # unknown kid or a stale copy costs at most one fetch per interval.
        return not self._keys or self._tried_at is None or now - self._tried_at >= self._interval

    def _refresh(self, now: float) -> None:
        self.fetches += 1
        self._tried_at = now
        try:
            document = self._fetch(self.url)
        except (OSError, ValueError) as exc:
            # Keep what we have (keys are valid for days); with nothing cached nobody can be verified.
            logger.warning("teams signing keys not fetched", extra={"error": type(exc).__name__})
            if not self._keys:
                raise KeysUnavailable("the Bot Connector's signing keys could not be fetched") from None
            return
        self._keys = _parse_jwks(document)
        self._fetched_at = now


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, SigningKey]:
    keys: dict[str, SigningKey] = {}
    for entry in document.get("keys") or []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
            continue
        try:
            key = jwt.PyJWK(entry, algorithm="RS256")
        except jwt.PyJWTError:
            continue  # one unusable entry must not take the others down
        endorsements = entry.get("endorsements") or []
        keys[entry["kid"]] = SigningKey(entry["kid"], key, frozenset(str(e) for e in endorsements))
    return keys


# -- the checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """What a verified request proves: the connector called for this app, from this tenant."""

    app_id: str
    service_url: str
    tenant_id: str


def activity_tenant(activity: Mapping[str, Any]) -> str | None:
    """conversation.tenantId, else channelData.tenant.id (Teams sends both; older events one)."""
    conversation = activity.get("conversation") or {}
    tenant = conversation.get("tenantId") if isinstance(conversation, dict) else None
    if not tenant:
        channel_data = activity.get("channelData") or {}
        tenant = ((channel_data.get("tenant") or {}) if isinstance(channel_data, dict) else {}).get("id")
    return tenant if isinstance(tenant, str) and tenant else None


class BotAuthenticator:
    """Verifies the connector's JWT against one activity. `allowed_tenants` is the allow-list;
    `clock` gives Unix seconds (exp/nbf are checked here, with the leeway, not by PyJWT)."""

    def __init__(
        self,
        app_id: str,
        keys: SigningKeys,
        allowed_tenants: Collection[str],
        *,
        issuer: str = ISSUER,
        leeway: float = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not app_id:
            raise ValueError("the bot's app id is required")
        self.app_id = app_id
        self.keys = keys
        self.allowed_tenants = frozenset(allowed_tenants)
        self.issuer = issuer
        self.leeway = leeway
        self._clock = clock

    def authenticate(self, authorization: str | None, activity: Mapping[str, Any]) -> Caller:
        """The verified caller, or a TeamsAuthError saying which check failed."""
        token = bearer(authorization)
        claims, key = self._verified_claims(token)
        self._check_times(claims)
        if CHANNEL not in key.endorsements:
            raise MissingEndorsement(f"the signing key is not endorsed for {CHANNEL}")
        service_url = activity.get("serviceUrl")
        if not isinstance(service_url, str) or claims.get("serviceurl") != service_url:
            raise ServiceUrlMismatch("the token was issued for another service URL")
        tenant = activity_tenant(activity)
        if tenant is None or tenant not in self.allowed_tenants:
            raise TenantNotAllowed("this tenant is not allowed to use this bot")
        return Caller(app_id=self.app_id, service_url=service_url, tenant_id=tenant)

    def _verified_claims(self, token: str) -> tuple[dict[str, Any], SigningKey]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise MalformedToken("not a JWT") from None
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS or not isinstance(kid, str) or not kid:
            raise MalformedToken("the token must be RS256 with a key id")
        key = self.keys.get(kid)
        if key is None:
            raise ForeignKey("the token is signed with a key the connector does not publish")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.app_id,
                issuer=self.issuer,
                # Times are checked in _check_times against the injected clock.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "iss", "aud"],
                },
            )
        except jwt.InvalidSignatureError:
            raise ForeignKey("the signature does not verify with the connector's key") from None
        except jwt.InvalidIssuerError:
            raise WrongIssuer("the token was not issued by the Bot Connector") from None
        except jwt.InvalidAudienceError:
            raise WrongAudience("the token was issued for another bot") from None
        except jwt.PyJWTError:
            raise MalformedToken("the token could not be decoded") from None
        return claims, key

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or now > exp + self.leeway:
            raise ExpiredToken("the token has expired")
        if nbf is not None and (not isinstance(nbf, int | float) or now < nbf - self.leeway):
            raise ExpiredToken("the token is not valid yet")


def bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MalformedToken("an Authorization: Bearer token is required")
    return token.strip()
