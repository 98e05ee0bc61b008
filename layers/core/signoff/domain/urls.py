"""Which URLs may receive a decision (the requester's webhook). Checked at intake on the URL as
written (literal addresses and known names), so a bad callback is a 422 naming `callback_url`; and
again at delivery on every address the host resolves to (`address_refusal`), because DNS can
change between intake and delivery, and a name can point anywhere.

A webhook receiver is a public https endpoint. Refused: private (RFC 1918, ULA fc00::/7), shared
(carrier-grade NAT 100.64/10), loopback, link-local (instance credential endpoints live there),
multicast, unspecified (0.0.0.0 and :: reach this machine) and other non-global addresses; IPv4
addresses wrapped in IPv6 (::ffff:a.b.c.d, NAT64, 6to4, IPv4-compatible) are unwrapped first, so
the wrapping hides nothing; cloud metadata names; single-label and private-use names. Loopback
alone may be allowed (the local stack's receivers), never any of the others."""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import urlsplit

ALLOW_LOOPBACK_ENV = "SIGNOFF_ALLOW_LOOPBACK_CALLBACKS"  # the local stack sets it
_LOOPBACK_NAMES = frozenset({"localhost"})
# Instance metadata services by name (their addresses are link-local, ULA or shared, refused as such).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
# Names only a private resolver answers (RFC 6761, 6762, 8375, ICANN's .internal).
PRIVATE_SUFFIXES = (".internal", ".local", ".localhost", ".localdomain", ".home.arpa", ".lan", ".intranet")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# A last label of digits or hex is an IPv4 address to every resolver (127.1, 2130706433, 0x7f.1).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def loopback_allowed() -> bool:
    return os.environ.get(ALLOW_LOOPBACK_ENV, "").strip().lower() == "true"


def callback_refusal(url: str, *, allow_loopback: bool) -> str | None:
    """Why `url` may not receive a webhook, or None when it may: https to a public host; http or
    https to loopback only when `allow_loopback` (in Lambda loopback is the runtime API)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError:  # e.g. an unclosed [IPv6 literal, port 99999
        return "the callback URL is malformed"
    if parts.scheme not in ("https", "http"):
        return "the callback URL must be https://"
    if not host:
        return "the callback URL has no host"
    address = _ip(host)
    if address is not None:
        refusal = address_refusal(address, allow_loopback=allow_loopback)
        if refusal is not None or _unwrap(address).is_loopback:
            return refusal  # an allowed loopback receiver may be plain http (the local stack)
    else:
        refusal = host_name_refusal(host, allow_loopback=allow_loopback)
        if refusal is not None or host in _LOOPBACK_NAMES:
            return refusal
    return None if parts.scheme == "https" else "the callback URL must be https://"


def host_name_refusal(host: str, *, allow_loopback: bool) -> str | None:
    """Why a host *name* (not an address) may not receive a webhook, before it is resolved."""
    name = host.strip().lower().rstrip(".")
    if name in _LOOPBACK_NAMES:
        return None if allow_loopback else "loopback callback URLs are not allowed here"
    if name in METADATA_HOSTS:
        return "cloud metadata hosts are not allowed"
    if _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        return "IPv4 addresses in a non-standard form are not allowed"
    if "." not in name:
        return "single-label host names are not allowed (not a public host)"
    if name.endswith(PRIVATE_SUFFIXES):
        return "private-use host names are not allowed"
    return None


def address_refusal(address: IPAddress | str, *, allow_loopback: bool) -> str | None:
    """Why a webhook may not be sent to `address` (a literal or a resolved address), or None."""
    ip = _ip(address) if isinstance(address, str) else address
    if ip is None:
        return "not an IP address"
    # Every IPv4 address an IPv6 one carries is checked too: a socket to ::ffff:169.254.169.254
    # (or its NAT64 or 6to4 twin) reaches 169.254.169.254.
    for candidate in (*_embedded(ip), _unwrap(ip)):
        refusal = _plain_refusal(candidate, allow_loopback=allow_loopback)
        if refusal is not None:
            return refusal
    return None


def _plain_refusal(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    if ip.is_unspecified:
        return "unspecified addresses (0.0.0.0, ::) are not allowed"
    if ip.is_loopback:
        return None if allow_loopback else "loopback callback URLs are not allowed here"
    if ip.is_link_local:
        return "link-local callback URLs are not allowed"
    if ip.is_multicast:
        return "multicast addresses are not allowed"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (carrier-grade NAT) addresses are not allowed"
    if ip.is_private:
        return "private addresses are not allowed"
    if ip.is_reserved or not ip.is_global:
        return "non-public addresses are not allowed"
    return None


def _unwrap(ip: IPAddress) -> IPAddress:
    # Python 3.11 calls ::ffff:127.0.0.1 neither loopback nor public: judge the IPv4 address.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded(ip: IPAddress) -> list[IPAddress]:
    if not isinstance(ip, ipaddress.IPv6Address) or ip.ipv4_mapped is not None:
        return []
    found: list[IPAddress] = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(low32)
    return found


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
    return address is not None and _unwrap(address).is_loopback


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
