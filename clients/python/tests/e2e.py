"""End-to-end test of the INSTALLED keyservice-client against a real keyservice.

Run by internal/server/kit_python_test.go (TestPythonKit), which installs the kit in a
fresh venv and runs this file from outside the repository:

    /usr/bin/python3 -m venv --system-site-packages V
    V/bin/pip install --no-index --no-build-isolation clients/python
    KEYSERVICE_ADDR=127.0.0.1:9090 KEYSERVICE_ADMIN_TOKEN=... V/bin/python e2e.py

It prints one JSON line: {"ok": bool, "checks": {name: bool}, "failed": [why, ...]}.
Keys and tokens are never printed.
"""
import asyncio
import importlib.util
import json
import os
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from wsgiref.simple_server import WSGIRequestHandler, make_server

import grpc
from google.protobuf import duration_pb2

import keyservice_client
from keyservice_client import ASGIMiddleware, Client, KeyserviceError, WSGIMiddleware, pb, pb_grpc

ADDR = os.environ["KEYSERVICE_ADDR"]
checks = {}
failed = []
secret_values = []  # every key and token the test holds: none may appear in any output
key_values = []  # the keys among them: none may reach an application behind the middleware


def check(name, ok, why=""):
    ok = bool(ok)
    checks[name] = checks.get(name, True) and ok
    if not ok:
        failed.append(f"{name}: {why}" if why else name)
    return ok


def hidden(text):
    """text, unless it contains a key or token (then a placeholder)."""
    text = str(text)
    return "<contains a secret>" if any(s in text for s in secret_values) else text


# --- the installed package, not the source tree; no top-level google or keyservice package
check("installed", keyservice_client.__file__.startswith(sys.prefix) and "clients/python" not in keyservice_client.__file__,
      keyservice_client.__file__)
check("no_shadowing", importlib.util.find_spec("keyservice") is None and importlib.util.find_spec("google.api") is None
      and importlib.util.find_spec("google.protobuf") is not None)



def googleapis_coexists():
    """With another version of the google/api protos installed (googleapis-common-protos), the
    kit uses those modules: protobuf's pool never gets two different google/api/http.proto."""
    import ast
    import re
    import subprocess
    import tempfile

    from google.protobuf import descriptor_pb2

    from keyservice_client import _gen

    with tempfile.TemporaryDirectory() as d:
        api = os.path.join(d, "google", "api")
        os.makedirs(api)
        for name in ("http_pb2.py", "annotations_pb2.py"):
            with open(os.path.join(os.path.dirname(_gen.__file__), name)) as f:
                src = f.read()
            m = re.search(r"AddSerializedFile\((b'.*')\)$", src, re.M)
            fd = descriptor_pb2.FileDescriptorProto.FromString(ast.literal_eval(m.group(1)))
            fd.options.java_package += ".elsewhere"  # not byte for byte the kit's
            with open(os.path.join(api, name), "w") as f:
                f.write(src.replace(m.group(1), repr(fd.SerializeToString())))
        code = ("import google.api.annotations_pb2 as g\nfrom keyservice_client import pb\n"
                "from keyservice_client._gen import keyservice_pb2 as k\n"
                "print(k.google_dot_api_dot_annotations__pb2 is g and pb.ValidateRequest(key='x').key == 'x')")
        out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=d), capture_output=True,
                             text=True, timeout=60)
        return out.returncode == 0 and out.stdout.strip() == "True", (out.stdout + out.stderr)[-400:]


check("stubs_bundled", pb.DESCRIPTOR.name == "keyservice/v1/keyservice.proto" and sys.modules.get("google.api") is None
      and "keyservice_client._gen.annotations_pb2" in sys.modules)
check("googleapis_coexists", *googleapis_coexists())

admin = Client(ADDR, token=os.environ["KEYSERVICE_ADMIN_TOKEN"])
secret_values.append(os.environ["KEYSERVICE_ADMIN_TOKEN"])


def create(name, scopes=("read",), **fields):
    created = admin.stub.CreateKey(pb.CreateKeyRequest(name=name, owner="acme", scopes=list(scopes), **fields),
                                   metadata=admin.metadata, timeout=10)
    secret_values.append(created.secret)
    key_values.append(created.secret)
    return created


def per_minute(n):
    return pb.RateLimit(limit=n, period=duration_pb2.Duration(seconds=60))


B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def wrong_key(like):
    """A well-formed key (prefix, 30 base62, CRC32 checksum) that was never issued."""
    body = "".join(secrets.choice(B62) for _ in range(30))
    crc, digits = zlib.crc32(body.encode()), ""
    for _ in range(6):
        crc, d = divmod(crc, 62)
        digits = B62[d] + digits
    key = like[:-36] + body + digits
    secret_values.append(key)
    return key


def malformed(like):
    return like[:-1] + ("A" if like[-1] != "A" else "B")  # checksum no longer matches


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


normal = create("kit-normal")
revoked = create("kit-revoked")
admin.stub.RevokeKey(pb.RevokeKeyRequest(id=revoked.key.id), metadata=admin.metadata, timeout=10)
limited_wsgi = create("kit-limited-wsgi", rate_limit=per_minute(1))
limited_asgi = create("kit-limited-asgi", rate_limit=per_minute(1))
no_credits = create("kit-credits", credits=pb.Credits(remaining=1))
elsewhere = create("kit-elsewhere", allowed_cidrs=["192.0.2.0/24"])
WRONG = wrong_key(normal.secret)
MALFORMED = malformed(normal.secret)
secret_values.append(MALFORMED)
DOWN = closed_port()

# The README's three lines, as written (KEYSERVICE_ADDR is set; no KEYSERVICE_TOKEN).
refused = []
refuse = refused.append
presented = normal.secret

# --- README: verify ---
from keyservice_client import verify_key

result = verify_key(presented, required_scopes=["read"])
if not result.valid:
    refuse(result.code)  # "NOT_FOUND", "REVOKED", "RATE_LIMITED", ...
# --- end ---

check("readme_snippet", refused == [] and result.valid and result.code == "VALID", refused)
check("readme_snippet", verify_key(revoked.secret).code == "REVOKED")

# --- verify_key: every answer is a result; only "no answer" raises
client = Client(ADDR)
r = client.verify_key(normal.secret, required_scopes=["read"])
check("verify_valid", r.valid and r.code == "VALID" and r.key is not None and r.key.id == normal.key.id
      and r.key.owner == "acme" and r.key.name == "kit-normal" and r.key.scopes == ("read",)
      and r.rate_limit is not None and r.rate_limit.limit > 0 and r.refused_by is None, hidden(r))
try:
    r.valid = False
    check("result_frozen", False, "VerifyResult is not frozen")
except Exception as err:  # dataclasses.FrozenInstanceError
    check("result_frozen", type(err).__name__ == "FrozenInstanceError", type(err).__name__)
for name, key, code in (("verify_wrong", WRONG, "NOT_FOUND"), ("verify_malformed", MALFORMED, "MALFORMED"),
                        ("verify_revoked", revoked.secret, "REVOKED")):
    r = client.verify_key(key)
    check(name, not r.valid and r.code == code, r.code)
r = client.verify_key(normal.secret, required_scopes=["admin"])
check("verify_insufficient_scope", not r.valid and r.code == "INSUFFICIENT_SCOPE", r.code)
r = client.verify_key(normal.secret, cost=0)
check("verify_cost_zero", r.valid and r.code == "VALID", r.code)


class Counter(grpc.UnaryUnaryClientInterceptor):
    """Counts the tries a Client makes."""

    def __init__(self):
        self.calls = 0

    def intercept_unary_unary(self, continuation, details, request):
        self.calls += 1
        return continuation(details, request)


def down_client(**opts):
    c = Client(DOWN, **opts)
    counter = Counter()
    c.stub = pb_grpc.KeyServiceStub(grpc.intercept_channel(c.channel, counter))
    return c, counter


for name, cost, tries in (("unavailable_retried", None, 3), ("unavailable_cost_not_retried", 1, 1)):
    c, counter = down_client()
    try:
        c.verify_key(normal.secret, cost=cost)
        check(name, False, "no error at a closed port")
    except KeyserviceError as err:
        check(name, err.code == grpc.StatusCode.UNAVAILABLE and counter.calls == tries
              and normal.secret not in str(err) and normal.secret not in repr(err),
              f"{err.code} after {counter.calls} tries, want UNAVAILABLE after {tries}")
# a caller credential: sent as the bearer token; once revoked, refused (UNAUTHENTICATED)
cred = admin.stub.CreateCredential(pb.CreateCredentialRequest(name="kit-caller", permissions=["keys.validate"], all_keyspaces=True),
                                   metadata=admin.metadata, timeout=10)
secret_values.append(cred.secret)
r = Client(ADDR, token=cred.secret).verify_key(normal.secret)
check("verify_with_caller_token", r.valid, r.code)
admin.stub.RevokeCredential(pb.RevokeCredentialRequest(id=cred.credential.id), metadata=admin.metadata, timeout=10)
BAD_CALLER = Client(ADDR, token=cred.secret)
check("client_repr_hides_token", cred.secret not in repr(BAD_CALLER) and cred.secret not in str(BAD_CALLER))
try:
    BAD_CALLER.verify_key(normal.secret)
    check("verify_bad_caller_token", False, "a revoked caller credential was accepted")
except KeyserviceError as err:
    check("verify_bad_caller_token", err.code == grpc.StatusCode.UNAUTHENTICATED and cred.secret not in str(err), err.code)


# --- the applications behind the middleware report what they were given
def wsgi_app(environ, start_response):
    seen = {
        "key": None if environ.get("keyservice.key") is None else environ["keyservice.key"].id,
        "owner": getattr(environ.get("keyservice.key"), "owner", None),
        "scopes": list(getattr(environ.get("keyservice.key"), "scopes", ())),
        "key_headers": sorted(k for k in environ if k in ("HTTP_AUTHORIZATION", "HTTP_X_API_KEY")),
        "secret_seen": any(s in str(v) for v in environ.values() for s in key_values),
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


routes = {
    "/read": WSGIMiddleware(wsgi_app, client, required_scopes=["read"]),
    "/admin": WSGIMiddleware(wsgi_app, client, required_scopes=["admin"]),
    "/apikey": WSGIMiddleware(wsgi_app, client, header="X-API-Key"),
    "/down": WSGIMiddleware(wsgi_app, Client(DOWN)),
    "/badcaller": WSGIMiddleware(wsgi_app, BAD_CALLER),
}


def router(environ, start_response):
    return routes[environ["PATH_INFO"]](environ, start_response)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


httpd = make_server("127.0.0.1", 0, router, handler_class=Quiet)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
BASE = f"http://127.0.0.1:{httpd.server_port}"


def get(path, headers):
    req = urllib.request.Request(BASE + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        lifespans.append(scope)
        return
    info = scope.get("keyservice")
    seen = {
        "key": None if info is None else info.id,
        "owner": getattr(info, "owner", None),
        "scopes": list(getattr(info, "scopes", ())),
        "state_key": getattr((scope.get("state") or {}).get("keyservice"), "id", None),
        "key_headers": sorted(n.decode() for n, _ in scope["headers"] if n in (b"authorization", b"x-api-key")),
        "secret_seen": any(s.encode() in v for _, v in scope["headers"] for s in key_values),
    }
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        asgi_websockets.append(seen)
        return
    body = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


lifespans = []
asgi_websockets = []
asgi_routes = {
    "/read": ASGIMiddleware(asgi_app, client, required_scopes=["read"]),
    "/admin": ASGIMiddleware(asgi_app, client, required_scopes=["admin"]),
    "/apikey": ASGIMiddleware(asgi_app, client, header="X-API-Key"),
    "/down": ASGIMiddleware(asgi_app, Client(DOWN)),
    "/badcaller": ASGIMiddleware(asgi_app, BAD_CALLER),
}


def asgi_scope(path, headers, kind="http", extensions=None):
    return {
        "type": kind, "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50123), "server": ("127.0.0.1", 8000), "state": {}, "extensions": extensions or {},
    }


async def asgi_get(path, headers):
    scope = asgi_scope(path, headers)
    before = list(scope["headers"])
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await asgi_routes[path](scope, receive, send)
    check("asgi_scope_untouched", scope["headers"] == before and "keyservice" not in scope and scope["state"] == {})
    start = sent[0]
    assert start["type"] == "http.response.start", start["type"]
    hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    return start["status"], hdrs, b"".join(m.get("body", b"") for m in sent[1:])


def bearer(key):
    return {"Authorization": "Bearer " + key}


BEARER = 'Bearer realm="keyservice"'
APIKEY = 'ApiKey realm="keyservice", header="X-API-Key"'


def middleware_checks(kind, call, limited):
    """The contract's table, through one middleware; call(path, headers) -> (status, headers, body)."""

    def refused(name, got, status, www=None, error=None, **want):
        code, h, body = got
        try:
            err = json.loads(body).get("error")
        except ValueError:
            err = None
        ok = code == status and (www is None or h.get("www-authenticate") == www) and (error is None or err == error)
        ok = ok and h.get("content-type") == "application/json" and not any(s.encode() in body for s in secret_values)
        for k, v in want.items():
            ok = ok and h.get(k.replace("_", "-")) == v
        check(f"{kind}_{name}", ok, f"{code} {hidden(h)} {hidden(body[:200])}")
        return h

    code, _, body = got = call("/read", bearer(normal.secret))
    seen = json.loads(body) if code == 200 else {}
    check(f"{kind}_valid", code == 200 and seen["key"] == normal.key.id and seen["owner"] == "acme"
          and seen["scopes"] == ["read"] and seen["key_headers"] == [] and seen["secret_seen"] is False
          and (kind == "wsgi" or seen["state_key"] == normal.key.id), f"{code} {hidden(seen)}")
    code, _, body = call("/read", {"Authorization": "bEaReR  " + normal.secret + " "})
    check(f"{kind}_bearer_any_case", code == 200, code)
    refused("wrong", call("/read", bearer(WRONG)), 401, BEARER + ', error="invalid_token"', "invalid_token")
    refused("malformed", call("/read", bearer(MALFORMED)), 401, BEARER + ', error="invalid_token"')
    refused("revoked", call("/read", bearer(revoked.secret)), 401, BEARER + ', error="invalid_token"')
    refused("missing", call("/read", {}), 401, BEARER)
    refused("not_bearer", call("/read", {"Authorization": "Basic " + normal.secret}), 401, BEARER)
    refused("insufficient_scope", call("/admin", bearer(normal.secret)), 403, BEARER + ', error="insufficient_scope"',
            "insufficient_scope")
    refused("forbidden", call("/read", bearer(elsewhere.secret)), 403,
            BEARER + ', error="invalid_token", error_description="not allowed from this address"')
    first = call("/read", bearer(limited.secret))
    check(f"{kind}_limited_first", first[0] == 200, first[0])
    h = refused("limited", call("/read", bearer(limited.secret)), 429, ratelimit_limit="1", ratelimit_remaining="0",
                x_refused_by="key")
    ra = h.get("retry-after", "")
    check(f"{kind}_limited_retry_after", ra.isdigit() and 1 <= int(ra) <= 60 and h.get("ratelimit-reset") == ra,
          f"Retry-After {ra!r}, RateLimit-Reset {h.get('ratelimit-reset')!r}")
    code, _, body = call("/apikey", {"X-API-Key": " " + normal.secret + " "})
    seen = json.loads(body) if code == 200 else {}
    check(f"{kind}_apikey_valid", code == 200 and seen["key"] == normal.key.id and seen["key_headers"] == []
          and seen["secret_seen"] is False, f"{code} {hidden(seen)}")
    refused("apikey_wrong", call("/apikey", {"X-API-Key": WRONG}), 401, APIKEY + ', error="invalid_token"')
    refused("apikey_missing", call("/apikey", bearer(normal.secret)), 401, APIKEY)
    refused("unavailable", call("/down", bearer(normal.secret)), 503, retry_after="1")
    refused("bad_caller_token", call("/badcaller", bearer(normal.secret)), 401,
            BEARER + ', error="invalid_caller", error_description="the gateway\'s caller token '
            '(X-Keyservice-Caller-Token) was not accepted"')


middleware_checks("wsgi", get, limited_wsgi)
# credits: one left; the first call spends it, the second is refused (402)
code, _, _ = get("/read", bearer(no_credits.secret))
code2, h, _ = get("/read", bearer(no_credits.secret))
check("wsgi_usage_exceeded", code == 200 and code2 == 402 and h.get("x-refused-by") == "key"
      and h.get("x-credits-remaining") == "0", f"{code} {code2} {hidden(h)}")
httpd.shutdown()


async def asgi_checks():
    loop = asyncio.get_running_loop()

    def call(path, headers):
        # middleware_checks is synchronous: run each ASGI call to completion in a helper thread's loop
        return asyncio.run_coroutine_threadsafe(asgi_get(path, headers), loop).result(60)

    await loop.run_in_executor(None, middleware_checks, "asgi", call, limited_asgi)

    # the event loop keeps running while keyservice is asked (here: three tries at a closed port)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    t = asyncio.create_task(ticker())
    start = time.monotonic()
    status, _, _ = await asgi_get("/down", bearer(normal.secret))
    took = time.monotonic() - start
    t.cancel()
    check("asgi_loop_not_blocked", status == 503 and took >= 0.15 and ticks >= 5, f"{status} {took:.3f}s {ticks} ticks")

    # lifespan passes through untouched
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await asgi_routes["/read"](lifespan, None, None)
    check("asgi_lifespan_passes", lifespans == [lifespan] and lifespans[0] is lifespan)

    # a websocket needs a key too: refused before the handshake completes
    for name, ext, want in (("asgi_websocket_refused_close", {}, "websocket.close"),
                            ("asgi_websocket_refused_http", {"websocket.http.response": {}}, "websocket.http.response.start")):
        sent = []
        msgs = [{"type": "websocket.connect"}]

        async def receive():
            return msgs.pop(0)

        async def send(message):
            sent.append(message)

        await asgi_routes["/read"](asgi_scope("/read", {}, "websocket", ext), receive, send)
        ok = bool(sent) and sent[0]["type"] == want and msgs == [] and asgi_websockets == []
        if want == "websocket.close":
            ok = ok and sent[0].get("code") == 1008
        else:
            hdrs = dict(sent[0].get("headers", []))
            ok = ok and sent[0].get("status") == 401 and hdrs.get(b"www-authenticate") == BEARER.encode()
        check(name, ok, hidden(sent))
    msgs = [{"type": "websocket.connect"}]
    sent = []

    async def receive():
        return msgs.pop(0)

    async def send(message):
        sent.append(message)

    await asgi_routes["/read"](asgi_scope("/read", bearer(normal.secret), "websocket"), receive, send)
    check("asgi_websocket_valid", sent and sent[0]["type"] == "websocket.accept" and len(asgi_websockets) == 1
          and asgi_websockets[0]["key"] == normal.key.id and asgi_websockets[0]["key_headers"] == [],
          hidden(asgi_websockets))


asyncio.run(asgi_checks())

want = {"installed", "no_shadowing", "readme_snippet", "verify_valid", "verify_wrong", "verify_malformed",
        "verify_revoked", "verify_insufficient_scope", "unavailable_retried", "unavailable_cost_not_retried",
        "wsgi_valid", "wsgi_wrong", "wsgi_missing", "wsgi_revoked", "wsgi_insufficient_scope", "wsgi_limited",
        "asgi_valid", "asgi_wrong", "asgi_missing", "asgi_revoked", "asgi_insufficient_scope", "asgi_limited",
        "asgi_loop_not_blocked", "asgi_websocket_valid"}
for name in sorted(want - checks.keys()):
    check(name, False, "never ran")
print(json.dumps({"ok": not failed and all(checks.values()), "checks": checks, "failed": [hidden(f) for f in failed]}))
