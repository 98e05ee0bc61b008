"""Which URLs may receive a decision (the requester's webhook). Checked at intake, so a bad
callback is a 422 naming `callback_url`, and again before each delivery."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

ALLOW_LOOPBACK_ENV = "SIGNOFF_ALLOW_LOOPBACK_CALLBACKS"  # the local stack sets it
_LOOPBACK_NAMES = frozenset({"localhost"})


def loopback_allowed() -> bool:
    return os.environ.get(ALLOW_LOOPBACK_ENV, "").strip().lower() == "true"


def callback_refusal(url: str, *, allow_loopback: bool) -> str | None:
    """Why `url` may not receive a webhook, or None when it may: https only; never link-local
    (instance credential endpoints); loopback (in Lambda, the runtime API) only when allowed."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unclosed [IPv6 literal
        return "the callback URL is malformed"
    if parts.scheme not in ("https", "http"):
        return "the callback URL must be https://"
    if not host:
        return "the callback URL has no host"
    if _is_link_local(host):
        return "link-local callback URLs are not allowed"
    if is_loopback_host(host):
        return None if allow_loopback else "loopback callback URLs are not allowed here"
    return None if parts.scheme == "https" else "the callback URL must be https://"


def is_loopback_host(host: str) -> bool:
    """True when `host` (a URL's host, any case, bracketed or not) is this machine: `localhost`,
    127.0.0.0/8 or ::1. Defined here rather than in `signoff.adapters.http_out`, which re-exports
    it for the other senders, because the callback policy needs it and the domain imports nothing
    from the layers above it: one definition, so every sender agrees on what the local stack is.

    A trailing dot (the DNS root) and an IPv4-mapped IPv6 address (::ffff:127.0.0.1) name the same
    machine: without them a loopback URL could pass as an ordinary https one."""
    name = host.strip().lower().rstrip(".")
    if name in _LOOPBACK_NAMES:
        return True
    address = _ip(name)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Python 3.11 does not call ::ffff:127.0.0.1 loopback, yet a socket to it reaches 127.0.0.1.
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


def _is_link_local(host: str) -> bool:
    # 169.254.0.0/16 holds instance and container credential endpoints: never a webhook receiver.
    address = _ip(host)
    return address is not None and address.is_link_local


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
