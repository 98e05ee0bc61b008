"""Outgoing HTTP: what every request Signoff sends to another service shares (the requester's
webhook, the Bot Connector and its signing keys, the API client of `signoff.tools`).

- `no_redirect_opener()`: an opener that never follows a redirect;
- `is_loopback_host(host)` and `host_matches(host, pattern)`: which hosts are the local machine,
  and the "*.example.com" allow-list patterns;
- `retry_after_seconds(value, now)` and `backoff_delay(...)`: jittered exponential backoff that
  honours a server's Retry-After, up to a cap.

The Lambda layer ships this module and the CLI uses it too, so it imports only the standard
library and the domain."""

from __future__ import annotations

import email.utils
import random
import urllib.request
from typing import Any

from signoff.domain.urls import is_loopback_host

__all__ = ["backoff_delay", "host_matches", "is_loopback_host", "no_redirect_opener", "retry_after_seconds"]

# Jitter only spreads retries out; it guards no secret, so a seedable PRNG is right.
_JITTER = random.Random()


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


def no_redirect_opener(*handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    """A urllib opener on which a 3xx answer raises `HTTPError` (its status) instead of being
    followed. Every request Signoff sends carries something meant for the host it names only (a
    signed decision, a SigV4 signature with a session token, the bot token, the app password), and
    a redirect would resend it to a host nobody vetted. `handlers` replace urllib's defaults of
    their kind (the webhook's connections to checked addresses)."""
    return urllib.request.build_opener(_RefuseRedirects, *handlers)


def host_matches(host: str, pattern: str) -> bool:
    """True when `host` is allowed by `pattern`: "*.example.com" is any subdomain of example.com
    (not example.com itself, nor a name that merely ends in "example.com"); anything else is one
    exact host. Case is ignored, as DNS ignores it."""
    host, pattern = host.lower(), pattern.lower().strip()
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com": the dot keeps evilexample.com out
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header as seconds from `now` (Unix seconds): delta-seconds ("120") or an HTTP
    date (a date in the past is 0). None when absent or unreadable (a negative number, a
    fraction, garbage): the caller then falls back to its own backoff."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(
    attempt: int, retry_after: float | None, *, base: float, cap: float, rng: random.Random = _JITTER
) -> float:
    """Seconds to wait after failed attempt number `attempt` (from 1) before the next one.

    Exponential backoff with "equal jitter": a random point in [d/2, d] for d = base * 2^(attempt-1),
    so retries from many senders spread out, yet no delay is shorter than the one before it. A
    server's Retry-After wins when it asks for longer, but at most `cap` seconds of it: a server
    cannot hold a sender past its own deadline. `cap` bounds Retry-After only; the backoff itself
    is bounded by the number of attempts the caller makes."""
    ceiling = base * 2.0 ** (attempt - 1)
    backoff = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is None:
        return backoff
    return max(backoff, min(retry_after, cap))
