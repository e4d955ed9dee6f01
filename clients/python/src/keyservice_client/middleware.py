"""WSGI and ASGI middleware: refuse a request whose key keyservice does not accept, with
exactly the statuses and headers of keyservice's forward-auth endpoint; on a valid key,
pass the request on with the key's identity and WITHOUT the key header.

No web framework is needed: these wrap any WSGI application (Flask, Django, ...) or ASGI
application (Starlette, FastAPI, Django's ASGI handler, ...).
"""

from __future__ import annotations

import asyncio
from typing import Callable, Iterable, Optional, Sequence

from . import _http
from ._client import Client, KeyserviceError

__all__ = ["ASGIMiddleware", "WSGIMiddleware"]


def _verify(client: Client, key: str, scopes: Sequence[str], keyspace: str, ip: str):
    try:
        return client.verify_key(key, required_scopes=scopes, keyspace=keyspace, client_ip=ip), None
    except KeyserviceError as err:
        return None, err


class WSGIMiddleware:
    """Wraps a WSGI application.

    header: where the key is read: "Authorization" (default, "Bearer <key>") or any other
      header name (the raw value).
    required_scopes, keyspace: passed to verify_key for every request.
    client_ip: a function environ -> the end client's address; default REMOTE_ADDR.

    On a valid key, environ["keyservice.key"] is the KeyInfo (id, owner, name, scopes,
    ...) and the key header is removed from environ before the application runs.
    """

    def __init__(
        self,
        app: Callable,
        client: Client,
        header: str = "Authorization",
        required_scopes: Sequence[str] = (),
        keyspace: str = "",
        client_ip: Optional[Callable[[dict], str]] = None,
    ):
        self.app = app
        self.client = client
        self.header = header
        self.required_scopes = tuple(required_scopes)
        self.keyspace = keyspace
        self.client_ip = client_ip or (lambda environ: environ.get("REMOTE_ADDR", ""))
        name = header.upper().replace("-", "_")
        # CGI puts two headers outside HTTP_*; WSGI servers follow it.
        self._environ_key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        key = _http.key_from(environ.pop(self._environ_key, None), self.header)
        if not key:
            refusal = _http.missing(self.header)
        else:
            result, err = _verify(self.client, key, self.required_scopes, self.keyspace, self.client_ip(environ))
            refusal = _http.decide(result, err, self.header)
        if refusal is not None:
            start_response(refusal.status_line, refusal.headers)
            return [refusal.body]
        environ["keyservice.key"] = result.key
        return self.app(environ, start_response)


class ASGIMiddleware:
    """Wraps an ASGI application.

    http and websocket connections need a valid key (a websocket without one is refused
    before its handshake completes: it is the same request with an Upgrade header, and
    letting it through would open the application to anyone); lifespan and any other
    scope pass through untouched.

    On a valid key, scope["keyservice"] (and scope["state"]["keyservice"] when the server
    provides state, as Starlette's request.state reads it) is the KeyInfo, and the key
    header is removed from scope["headers"]. The application gets a copy of the scope;
    the server's is not changed.

    verify_key runs in a worker thread (asyncio.to_thread), so the event loop never
    waits on keyservice; the same Client serves sync and async code.
    """

    def __init__(
        self,
        app: Callable,
        client: Client,
        header: str = "Authorization",
        required_scopes: Sequence[str] = (),
        keyspace: str = "",
        client_ip: Optional[Callable[[dict], str]] = None,
    ):
        self.app = app
        self.client = client
        self.header = header
        self.required_scopes = tuple(required_scopes)
        self.keyspace = keyspace
        self.client_ip = client_ip or (lambda scope: (scope.get("client") or ("",))[0] or "")
        self._name = header.lower().encode("latin-1")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        value = None
        headers = []
        for name, v in scope.get("headers") or ():
            if name.lower() == self._name:
                if value is None:
                    value = v.decode("latin-1")
            else:
                headers.append((name, v))
        key = _http.key_from(value, self.header)
        if not key:
            refusal = _http.missing(self.header)
        else:
            result, err = await asyncio.to_thread(
                _verify, self.client, key, self.required_scopes, self.keyspace, self.client_ip(scope))
            refusal = _http.decide(result, err, self.header)
        if refusal is not None:
            await self._refuse(kind, scope, receive, send, refusal)
            return
        scope = dict(scope, headers=headers, keyservice=result.key)
        if isinstance(scope.get("state"), dict):
            scope["state"] = dict(scope["state"], keyservice=result.key)
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(kind: str, scope: dict, receive: Callable, send: Callable, refusal: "_http.Refusal") -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers]
        if kind == "http":
            await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
            await send({"type": "http.response.body", "body": refusal.body})
            return
        # websocket: answer the handshake. With the server's websocket.http.response
        # extension the client gets the same status and headers as over http; without
        # it, closing before accept makes the server answer 403.
        msg = await receive()
        if msg.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": refusal.status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": refusal.body})
        else:
            await send({"type": "websocket.close", "code": 1008})
