"""What an HTTP service answers for a key: the statuses and headers of keyservice's
forward-auth endpoint (GET /v1/auth), shared by the WSGI and ASGI middleware."""

from __future__ import annotations

import datetime
import json
import math
from typing import List, Optional, Tuple

import grpc

from ._client import KeyserviceError, VerifyResult

Headers = List[Tuple[str, str]]

# Answers that look the same from outside: whether a key never existed, was revoked
# or expired is not told to whoever presents it.
_INVALID = ("MALFORMED", "NOT_FOUND", "REVOKED", "EXPIRED", "DISABLED")


def challenge(header: str) -> str:
    """The WWW-Authenticate base for the header the key is read from."""
    if header.lower() == "authorization":
        return 'Bearer realm="keyservice"'
    return f'ApiKey realm="keyservice", header="{header}"'


def key_from(value: Optional[str], header: str) -> str:
    """The key in a header's value: "Bearer <key>" (scheme in any case) in Authorization,
    the raw value (trimmed) in any other header; "" when there is none."""
    v = (value or "").strip()
    if header.lower() == "authorization":
        scheme, sep, token = v.partition(" ")
        if not sep or scheme.lower() != "bearer":
            return ""
        return token.strip()
    return v


def _secs(seconds: float) -> str:
    return str(max(int(math.ceil(seconds)), 1))


class Refusal:
    """A refusal to send instead of calling the application."""

    __slots__ = ("status", "reason", "headers", "body")

    def __init__(self, status: int, reason: str, headers: Headers, error: str):
        self.status = status
        self.reason = reason
        self.body = json.dumps({"error": error}).encode()
        self.headers = headers + [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", "no-store"),
        ]

    @property
    def status_line(self) -> str:
        return f"{self.status} {self.reason}"


_REASONS = {
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _refuse(status: int, headers: Headers, error: str) -> Refusal:
    return Refusal(status, _REASONS[status], headers, error)


def missing(header: str) -> Refusal:
    return _refuse(401, [("WWW-Authenticate", challenge(header))], "missing_key")


def decide(result: Optional[VerifyResult], err: Optional[KeyserviceError], header: str) -> Optional[Refusal]:
    """None when the key may pass; else the refusal (docs: the kit contract's table)."""
    base = challenge(header)
    if err is not None:
        code = err.code
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # this service's own caller limit
            return _refuse(429, [("Retry-After", str(err.retry_after or 1))], "caller_rate_limited")
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return _refuse(503, [("Retry-After", "1")], "unavailable")
        if code == grpc.StatusCode.UNAUTHENTICATED:  # our own caller token: a configuration error
            return _refuse(
                401,
                [("WWW-Authenticate", base + ', error="invalid_caller", error_description='
                  "\"the gateway's caller token (X-Keyservice-Caller-Token) was not accepted\"")],
                "invalid_caller",
            )
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
            # As forward-auth: a keyspace that does not exist or that this
            # caller may not use lets no key pass.
            return _refuse(401, [("WWW-Authenticate", base)], "invalid_request")
        return _refuse(500, [], "internal")
    assert result is not None
    c = result.code
    if c == "VALID" and result.valid:
        return None
    if c in _INVALID:
        return _refuse(401, [("WWW-Authenticate", base + ', error="invalid_token"')], "invalid_token")
    if c == "FORBIDDEN":
        return _refuse(
            403, [("WWW-Authenticate", base + ', error="invalid_token", error_description="not allowed from this address"')],
            "forbidden")
    if c == "INSUFFICIENT_SCOPE":
        return _refuse(403, [("WWW-Authenticate", base + ', error="insufficient_scope"')], "insufficient_scope")
    by = result.refused_by or "key"
    if c == "RATE_LIMITED":
        rl = result.owner_rate_limit if by == "owner" and result.owner_rate_limit else result.rate_limit
        if rl is None:  # as forward-auth: without a budget to tell, only the challenge
            return _refuse(429, [("WWW-Authenticate", base)], "rate_limited")
        s = _secs(rl.reset)
        return _refuse(429, [
            ("Retry-After", s),
            ("RateLimit-Limit", str(rl.limit)),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", s),
            ("X-Refused-By", by),
        ], "rate_limited")
    if c == "USAGE_EXCEEDED":
        cr = result.owner_credits if by == "owner" else result.credits
        h = [("X-Refused-By", by), ("X-Credits-Remaining", str(cr.remaining if cr else 0))]
        if cr is not None and cr.next_refill_at is not None:
            nxt = cr.next_refill_at.astimezone(datetime.timezone.utc)
            h.append(("X-Credits-Refill", nxt.strftime("%Y-%m-%dT%H:%M:%SZ")))
            h.append(("Retry-After", _secs((nxt - datetime.datetime.now(datetime.timezone.utc)).total_seconds())))
        return _refuse(402, h, "usage_exceeded")
    return _refuse(500, [], "unknown_answer")  # a code newer than this kit: fail closed
