"""Signed HTTP POSTs to the stores' endpoints.

Signature: `X-Aftersales-Signature: t=<unix time>,v1=<hex>[,v1=<hex>]`, each v1 being
HMAC-SHA256(secret, "<t>.<body>"). While a secret is being rotated both the new and the old one sign,
so a receiver that still knows only one of them accepts the delivery. The timestamp inside the signed
text lets receivers refuse a replay of an old request.

Connections are kept alive per thread and per host: delivering many events to one endpoint should not
pay a TCP (and TLS) handshake each time.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

USER_AGENT = "aftersales-webhooks/1"
MAX_LOGGED_BODY = 4000


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets)])


def verify(secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = 300) -> bool:
    """What a receiver does: true when one v1 matches and the timestamp is recent."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    timestamps = [v for k, v in parts if k == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    timestamp = int(timestamps[0])
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


@dataclass
class WebhookResult:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


_local = threading.local()


def _connection(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    pool: dict[tuple[str, str], http.client.HTTPConnection] = getattr(_local, "pool", None) or {}
    _local.pool = pool
    key = (scheme, netloc)
    connection = pool.get(key)
    if connection is None:
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        connection = cls(netloc, timeout=timeout)
        pool[key] = connection
    connection.timeout = timeout
    return connection


def _drop(scheme: str, netloc: str) -> None:
    pool = getattr(_local, "pool", {})
    connection = pool.pop((scheme, netloc), None)
    if connection is not None:
        connection.close()


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> WebhookResult:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        return WebhookResult(status=None, error=f"unsupported scheme {parsed.scheme!r}")
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    started = time.perf_counter()
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    for attempt in (1, 2):
        connection = _connection(parsed.scheme, parsed.netloc, timeout)
        try:
            connection.request("POST", path, body=body, headers=all_headers)
            response = connection.getresponse()
            content = response.read(MAX_LOGGED_BODY + 1)
            if response.will_close or len(content) > MAX_LOGGED_BODY:
                _drop(parsed.scheme, parsed.netloc)
            return WebhookResult(
                status=response.status, headers=dict(response.getheaders()),
                body=content[:MAX_LOGGED_BODY].decode("utf-8", "replace"),
                duration_ms=int((time.perf_counter() - started) * 1000),
            )
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            _drop(parsed.scheme, parsed.netloc)
            # A kept-alive connection the server closed meanwhile: one fresh try. The request never
            # reached the application, so this is not a second delivery.
            if attempt == 2:
                return WebhookResult(status=None, error=repr(exc),
                                     duration_ms=int((time.perf_counter() - started) * 1000))
        except Exception as exc:
            _drop(parsed.scheme, parsed.netloc)
            return WebhookResult(status=None, error=repr(exc), duration_ms=int((time.perf_counter() - started) * 1000))
    raise AssertionError("unreachable")
