"""The requester's webhook: once a checkpoint is decided, Finalize POSTs the decision to the
request's `callback_url`, signed with HMAC-SHA256 so the receiver can tell it came from Signoff.

What a receiver gets and should do:

    POST <callback_url>
    Content-Type: application/json
    X-Signoff-Timestamp: 1767268800             (Unix seconds when this attempt was signed)
    X-Signoff-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>." + raw body)>
    X-Signoff-Delivery: 6f1c...                 (a uuid; the same on every retry of one decision)
    User-Agent: signoff-webhook/1

    from signoff.adapters.webhook import verify
    ok = verify(key, int(headers["X-Signoff-Timestamp"]), raw_body, headers["X-Signoff-Signature"],
                now=time.time())

Verify the raw bytes as received (before parsing the JSON), refuse stale timestamps (replays), and
dedupe on X-Signoff-Delivery: a retry after a lost 2xx delivers the same decision again. Answer
2xx quickly; 5xx and 429 are retried (Retry-After is honoured up to 30 s), other statuses are not.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from pydantic_core import to_jsonable_python

from signoff.adapters.http_out import backoff_delay, no_redirect_opener, retry_after_seconds
from signoff.domain.urls import address_refusal, callback_refusal
from signoff.observability import logger
from signoff.settings import SettingsError

SIGNATURE_VERSION = "v1"
USER_AGENT = "signoff-webhook/1"
TIMEOUT_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 30.0
# Finalize runs with a 60 s Lambda timeout and has more to do after the webhook: past this budget
# the sender gives up (and says so) rather than being killed mid-delivery.
BUDGET_SECONDS = 45.0
DEFAULT_TOLERANCE_SECONDS = 300
_DELIVERY_NAMESPACE = uuid.UUID("5d0f7c3e-2b1a-4f7e-9c55-51a90ff5e0c1")

Sleep = Callable[[float], None]
KeySource = bytes | Callable[[], bytes]
AddressInfo = tuple[int, int, int, str, Any]  # (family, type, proto, canonname, sockaddr)
Resolver = Callable[..., Sequence[AddressInfo]]
"""`socket.getaddrinfo` or a stand-in with its signature (the tests never resolve a real name)."""


class CallbackRefused(OSError):
    """A callback host resolved to an address no webhook may reach. An OSError, so urllib hands it
    back wrapped in URLError like any connection failure; the sender tells it apart: not retried."""


class Opener(Protocol):
    """What `urllib.request.OpenerDirector` offers and the sender needs (tests inject fakes)."""

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = ...) -> Any: ...


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The X-Signoff-Signature value: "v1=" + hex HMAC-SHA256 of "<timestamp>." + body."""
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    key: bytes,
    timestamp: int,
    body: bytes,
    signature: str,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when `signature` is sign(key, timestamp, body) and the timestamp is within `tolerance`
    seconds of `now` (either way: a replayed old request and a clock far ahead are both refused).
    The comparison takes constant time, so the signature cannot be guessed byte by byte."""
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(key, timestamp, body).encode()
    # Encoded rather than compared as str: compare_digest raises on non-ASCII text.
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


@dataclass(frozen=True)
class _Attempt:
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout, TLS)
    detail: str
    retryable: bool
    retry_after: float | None = None
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    """Delivers signed webhook bodies with retries (implements the `Callbacks` port).

    `key` is the HMAC key, or a function returning it (read on every delivery, so a rotated
    secret is picked up). `allow_loopback` permits http://127.0.0.1 and http://localhost for the
    local stack; in Lambda loopback is the runtime API, so it stays off there."""

    def __init__(
        self,
        key: KeySource,
        opener: Opener | None = None,
        sleep: Sleep = time.sleep,
        attempts: int = 4,
        base_delay: float = 0.5,
        *,
        allow_loopback: bool = False,
        timeout: float = TIMEOUT_SECONDS,
        budget: float = BUDGET_SECONDS,
        clock: Callable[[], float] = time.time,
        resolve: Resolver = socket.getaddrinfo,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._key = key
        # A redirect would resend a signed decision to a host the requester never named; and the
        # connection goes to an address checked just before (see `pinned_handlers`).
        self._opener: Opener = opener or no_redirect_opener(*pinned_handlers(resolve, allow_loopback=allow_loopback))
        self._sleep = sleep
        self._attempts = attempts
        self._base_delay = base_delay
        self._allow_loopback = allow_loopback
        self._timeout = timeout
        self._budget = budget
        self._clock = clock

    def deliver(self, url: str, body: dict[str, Any]) -> tuple[bool, str]:
        """POST `body` (JSON-ready data) to `url`, signed, retrying transient failures.

        Returns (delivered, detail); transport failures are returned, never raised. A key that
        cannot be loaded raises (SettingsError for a malformed secret): that is misconfiguration."""
        refusal = self.refusal(url)
        if refusal is not None:
            logger.warning("webhook refused", extra={"reason": refusal})
            return False, f"refused: {refusal}"
        host = urlsplit(url).hostname or "?"
        payload = encode(body)
        key = self._key() if callable(self._key) else self._key
        delivery = delivery_id(payload)
        started = self._clock()
        for number in range(1, self._attempts + 1):
            attempt = self._post(url, payload, key, delivery)
            self._log(host, number, delivery, attempt)
            if attempt.refused:
                return False, attempt.detail  # recorded as a failed delivery, with the reason
            if attempt.delivered:
                return True, f"{attempt.detail} on attempt {number}"
            if not attempt.retryable:
                return False, f"{attempt.detail}: not retried"
            if number == self._attempts:
                break
            delay = backoff_delay(number, attempt.retry_after, base=self._base_delay, cap=MAX_RETRY_AFTER_SECONDS)
            if self._clock() - started + delay + self._timeout > self._budget:
                return False, f"gave up after {number} attempts (out of time): {attempt.detail}"
            self._sleep(delay)
        return False, f"gave up after {self._attempts} attempts: {attempt.detail}"

    def refusal(self, url: str) -> str | None:
        """Why `url` may not receive a webhook, or None when it may."""
        return callback_refusal(url, allow_loopback=self._allow_loopback)

    def _post(self, url: str, payload: bytes, key: bytes, delivery: str) -> _Attempt:
        timestamp = int(self._clock())  # signed per attempt, so a late retry is not stale on arrival
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Signoff-Timestamp": str(timestamp),
            "X-Signoff-Signature": sign(key, timestamp, payload),
            "X-Signoff-Delivery": delivery,
        }
        request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return _Attempt(response.status, f"HTTP {response.status}", retryable=False)
        except HTTPError as exc:
            with exc:
                return self._answered(exc.code, exc.headers.get("Retry-After") if exc.headers else None)
        except (OSError, HTTPException) as exc:  # URLError, refused, reset, timed out
            reason = exc.reason if isinstance(exc, URLError) else exc
            if isinstance(reason, CallbackRefused):
                return _Attempt(None, f"refused: {reason}", retryable=False, refused=True)
            return _Attempt(None, f"connection failed: {_reason(exc)}", retryable=not _certificate_error(exc))

    def _answered(self, status: int, retry_after: str | None) -> _Attempt:
        if 300 <= status < 400:
            return _Attempt(status, f"HTTP {status} (redirects are not followed)", retryable=False)
        transient = status == 429 or status >= 500
        wait = retry_after_seconds(retry_after, self._clock()) if transient else None
        return _Attempt(status, f"HTTP {status}", retryable=transient, retry_after=wait)

    @staticmethod
    def _log(host: str, number: int, delivery: str, attempt: _Attempt) -> None:
        # The host only: a callback URL's path or query often carries the receiver's own secret.
        extra = {"host": host, "status": attempt.status, "attempt": number, "delivery": delivery}
        if attempt.delivered:
            logger.info("webhook delivered", extra=extra)
        else:
            logger.warning("webhook attempt failed", extra={**extra, "detail": attempt.detail})


def pinned_handlers(resolve: Resolver, *, allow_loopback: bool) -> list[urllib.request.BaseHandler]:
    """urllib handlers whose connections resolve the host with `resolve`, refuse the connection if
    ANY address it resolves to is refused (`address_refusal`), and connect to those very
    addresses: checking a name and then letting the socket resolve it again would let a DNS answer
    that changed in between (rebinding) reach an internal address. TLS still verifies the
    certificate against the host name. No proxy: the address checked is the address connected to."""
    connect = _checked_connect(resolve, allow_loopback=allow_loopback)

    class _HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_pinned(http.client.HTTPConnection, connect), req)

    class _HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(_pinned(http.client.HTTPSConnection, connect), req)

    return [urllib.request.ProxyHandler({}), _HTTPHandler(), _HTTPSHandler()]


Connect = Callable[..., socket.socket]


def _pinned(cls: type[http.client.HTTPConnection], connect: Connect) -> Callable[..., http.client.HTTPConnection]:
    def build(host: str, **options: Any) -> http.client.HTTPConnection:
        connection = cls(host, **options)
        # http.client opens its socket through this attribute (socket.create_connection by default).
        connection._create_connection = connect  # type: ignore[attr-defined]
        return connection

    return build


def _checked_connect(resolve: Resolver, *, allow_loopback: bool) -> Connect:
    def connect(address: tuple[str, int], timeout: float | None = None, source_address: Any = None) -> socket.socket:
        host, port = address
        infos = resolve(host, port, 0, socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"{host} resolves to no address")
        for info in infos:
            refusal = address_refusal(str(info[4][0]), allow_loopback=allow_loopback)
            if refusal is not None:
                raise CallbackRefused(f"{refusal} ({host} resolves to {info[4][0]})")
        failure: OSError | None = None
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                if isinstance(timeout, int | float):  # else socket's global-default sentinel
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                failure = exc
        assert failure is not None  # infos was not empty
        raise failure

    return connect


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: JSON with sorted keys and no spaces."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=to_jsonable_python).encode()


def delivery_id(payload: bytes) -> str:
    """X-Signoff-Delivery: derived from the body rather than random, so it stays the same when the
    Finalize step itself is retried after a delivery whose answer was lost, not only across the
    attempts of one call. The body names the checkpoint, its status and decision time."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, hashlib.sha256(payload).hexdigest()))


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, URLError) else exc
    return str(reason) or type(reason).__name__


def _certificate_error(exc: BaseException) -> bool:
    # A certificate that does not verify will not verify a second later either.
    reason = exc.reason if isinstance(exc, URLError) else exc
    return isinstance(reason, ssl.SSLCertVerificationError)


def secret_key(secret_arn: str) -> bytes:
    """The HMAC key from Secrets Manager ({"hmac_key": "..."}), cached by Powertools for 5 minutes."""
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(secret_arn, transform="json", max_age=300)
    key = secret.get("hmac_key") if isinstance(secret, dict) else None
    if not isinstance(key, str) or not key:
        raise SettingsError(f"secret {secret_arn} must be JSON with a non-empty string 'hmac_key'")
    return key.encode()
