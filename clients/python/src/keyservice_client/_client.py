"""Client and verify_key: one call that says whether a presented key may be used."""

from __future__ import annotations

import datetime
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Tuple, Union

import grpc

from ._gen import keyservice_pb2 as pb
from ._gen import keyservice_pb2_grpc as pb_grpc

__all__ = [
    "Client",
    "CreditsInfo",
    "KeyInfo",
    "KeyserviceError",
    "RateLimitInfo",
    "VerifyResult",
    "verify_key",
]

# Codes that name a verdict about the key; the server answers them, they are
# never errors. (Code.Name gives "CODE_VALID"; results carry "VALID".)
_PREFIX = "CODE_"


@dataclass(frozen=True)
class KeyInfo:
    """The identity of a key (its stored record, never its secret)."""

    id: str
    owner: str
    name: str
    scopes: Tuple[str, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)
    hint: str = ""
    keyspace_id: str = ""
    expires_at: Optional[datetime.datetime] = None


@dataclass(frozen=True)
class RateLimitInfo:
    """A budget after the call: limit per period, what is left, seconds until full again
    (when limited: until the call's cost is available)."""

    limit: int
    remaining: int
    reset: float


@dataclass(frozen=True)
class CreditsInfo:
    """Credits after the call, and when the next refill is due (UTC), if any."""

    remaining: int
    next_refill_at: Optional[datetime.datetime] = None


@dataclass(frozen=True)
class VerifyResult:
    """keyservice's answer about a key. A wrong key is an answer (valid False, code says
    why), not an error.

    code is one of VALID, MALFORMED, NOT_FOUND, REVOKED, EXPIRED, DISABLED, FORBIDDEN,
    INSUFFICIENT_SCOPE, USAGE_EXCEEDED, RATE_LIMITED. refused_by is "key" or "owner" on
    RATE_LIMITED and USAGE_EXCEEDED, else None.
    """

    valid: bool
    code: str
    key: Optional[KeyInfo] = None
    rate_limit: Optional[RateLimitInfo] = None
    credits: Optional[CreditsInfo] = None
    refused_by: Optional[str] = None
    owner_rate_limit: Optional[RateLimitInfo] = None
    owner_credits: Optional[CreditsInfo] = None

    def __bool__(self) -> bool:
        return self.valid


class KeyserviceError(Exception):
    """No answer could be had: code is the grpc.StatusCode (UNAVAILABLE,
    DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED for the caller's own limit,
    UNAUTHENTICATED or PERMISSION_DENIED for the caller's credential,
    INVALID_ARGUMENT, ...). retry_after is the server's hint in seconds, when it gave one.
    The message never contains the key."""

    def __init__(self, code: grpc.StatusCode, details: str = "", retry_after: Optional[int] = None):
        self.code = code
        self.details = details or ""
        self.retry_after = retry_after
        super().__init__(f"keyservice: {code.name}: {self.details}" if self.details else f"keyservice: {code.name}")


def _ts(ts) -> Optional[datetime.datetime]:
    return ts.ToDatetime(tzinfo=datetime.timezone.utc)


def _rate(resp, name: str) -> Optional[RateLimitInfo]:
    if not resp.HasField(name):
        return None
    r = getattr(resp, name)
    return RateLimitInfo(limit=r.limit, remaining=r.remaining, reset=r.reset.ToTimedelta().total_seconds())


def _credits(resp, name: str) -> Optional[CreditsInfo]:
    if not resp.HasField(name):
        return None
    c = getattr(resp, name)
    return CreditsInfo(remaining=c.remaining, next_refill_at=_ts(c.next_refill_at) if c.HasField("next_refill_at") else None)


def _result(resp) -> VerifyResult:
    try:
        code = pb.Code.Name(resp.code)
    except ValueError:  # a code newer than these stubs
        code = f"{_PREFIX}{resp.code}"
    key = None
    if resp.HasField("key"):
        k = resp.key
        key = KeyInfo(
            id=k.id,
            owner=k.owner,
            name=k.name,
            scopes=tuple(k.scopes),
            metadata=dict(k.metadata),
            hint=k.hint,
            keyspace_id=k.keyspace_id,
            expires_at=_ts(k.expires_at) if k.HasField("expires_at") else None,
        )
    refused_by = None
    if resp.HasField("refused_by"):
        refused_by = {pb.HOLDER_KEY: "key", pb.HOLDER_OWNER: "owner"}.get(resp.refused_by)
    return VerifyResult(
        valid=resp.valid,
        code=code[len(_PREFIX):] if code.startswith(_PREFIX) else code,
        key=key,
        rate_limit=_rate(resp, "rate_limit"),
        credits=_credits(resp, "credits"),
        refused_by=refused_by,
        owner_rate_limit=_rate(resp, "owner_rate_limit"),
        owner_credits=_credits(resp, "owner_credits"),
    )


def _retry_after(err: grpc.RpcError) -> Optional[int]:
    for md in (err.initial_metadata() or (), err.trailing_metadata() or ()):
        for k, v in md:
            if k == "retry-after":
                try:
                    return max(int(v), 1)
                except ValueError:
                    return None
    return None


class Client:
    """A connection to keyservice; make one and keep it (it is safe to share between threads).

    address: "host:port" of keyservice's gRPC listener.
    token: the caller credential (a stored credential, or a bootstrap token), sent as
      "authorization: Bearer <token>"; None for an anonymous caller.
    tls: False for plaintext, True for TLS with the system's roots, or grpc.ChannelCredentials.
    timeout: the deadline of one verify_key in seconds, retries included.
    retries: further tries after UNAVAILABLE, for calls safe to repeat (see verify_key).

    client.stub is the generated KeyServiceStub for admin work (CreateKey, RevokeKey, ...):
    pass metadata=client.metadata to send the token; messages are in keyservice_client.pb.
    client.channel is the grpc.Channel.
    """

    def __init__(
        self,
        address: str,
        token: Optional[str] = None,
        tls: Union[bool, grpc.ChannelCredentials] = False,
        timeout: float = 5.0,
        retries: int = 2,
    ):
        if not address:
            raise ValueError("keyservice address is empty (host:port of its gRPC listener)")
        if tls is True:
            self.channel = grpc.secure_channel(address, grpc.ssl_channel_credentials())
        elif tls is False or tls is None:
            self.channel = grpc.insecure_channel(address)
        else:
            self.channel = grpc.secure_channel(address, tls)
        self.stub = pb_grpc.KeyServiceStub(self.channel)
        self.metadata: Tuple[Tuple[str, str], ...] = (("authorization", "Bearer " + token),) if token else ()
        self.address = address
        self.timeout = float(timeout)
        self.retries = max(int(retries), 0)

    def __repr__(self) -> str:  # never shows the token
        return f"Client({self.address!r}, token={'set' if self.metadata else None}, timeout={self.timeout})"

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def verify_key(
        self,
        key: str,
        required_scopes: Sequence[str] = (),
        keyspace: str = "",
        client_ip: str = "",
        cost: Optional[int] = None,
    ) -> VerifyResult:
        """Ask keyservice about key. Returns a VerifyResult for every answer, valid or not;
        raises KeyserviceError only when no answer could be had.

        cost: how much of the key's rate limit (and credits) the call spends; None is the
        server's default (1), 0 checks without spending.

        Retries: only after UNAVAILABLE, at most `retries` more tries (50 ms, then 100 ms
        apart) within `timeout`, and only when cost is None or 0. With cost > 0 the call
        is never retried: a try that reached the server before the connection failed may
        have spent, and a retry would spend twice. (A retried default call may, in that
        rare case, spend one unit twice; pass retries=0 to rule that out.)
        """
        req = pb.ValidateRequest(key=key, required_scopes=list(required_scopes), keyspace=keyspace, client_ip=client_ip)
        if cost is not None:
            req.cost = cost
        tries = 1 + (self.retries if not cost else 0)
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        for attempt in range(tries):
            left = deadline - time.monotonic()
            if left <= 0:
                raise KeyserviceError(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer within the client's timeout")
            try:
                resp = self.stub.Validate(req, timeout=left, metadata=self.metadata or None)
            except grpc.RpcError as err:
                code = err.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt + 1 < tries and deadline - time.monotonic() > delay:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise KeyserviceError(code, err.details() or "", _retry_after(err)) from None
            return _result(resp)
        raise AssertionError("unreachable")  # the last try returns or raises


_default_lock = threading.Lock()
_default: Optional[Tuple[Tuple[str, str], Client]] = None


def _default_client() -> Client:
    """The Client for KEYSERVICE_ADDR and KEYSERVICE_TOKEN, made once (again if they change)."""
    global _default
    addr = os.environ.get("KEYSERVICE_ADDR", "")
    token = os.environ.get("KEYSERVICE_TOKEN") or None
    if not addr:
        raise KeyserviceError(grpc.StatusCode.FAILED_PRECONDITION, "KEYSERVICE_ADDR is not set (host:port of keyservice's gRPC listener)")
    with _default_lock:
        if _default is None or _default[0] != (addr, token or ""):
            if _default is not None:
                _default[1].close()
            _default = ((addr, token or ""), Client(addr, token=token))
        return _default[1]


def verify_key(key: str, **opts) -> VerifyResult:
    """Client.verify_key on a shared Client for $KEYSERVICE_ADDR, sending $KEYSERVICE_TOKEN
    when set. opts: required_scopes, keyspace, client_ip, cost."""
    return _default_client().verify_key(key, **opts)
