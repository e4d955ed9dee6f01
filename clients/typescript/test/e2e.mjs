// End-to-end test of @keyservice/client as installed from its tarball into
// an empty project (internal/server/kit_typescript_test.go, TestTypeScriptKit):
//   KEYSERVICE_ADDR=127.0.0.1:9090 KEYSERVICE_TOKEN=<caller> KEYSERVICE_ADMIN_TOKEN=<admin> node e2e.mjs
// It prints one JSON line: {"ok": true, "checks": [...]} naming every check passed.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { createKeyservice, expressMiddleware, KeyserviceError, withKeyservice } from "@keyservice/client";

const checks = [];
const check = async (name, fn) => {
  await fn();
  checks.push(name);
};

// --- README: verify ---
import { verifyKey } from "@keyservice/client";

async function allowed(presentedKey) {
  const res = await verifyKey(presentedKey, { requiredScopes: ["read"] });
  return res.valid; // res.code says why not: "NOT_FOUND", "REVOKED", "RATE_LIMITED", ...
}
// --- end ---

const admin = createKeyservice({ address: process.env.KEYSERVICE_ADDR, token: process.env.KEYSERVICE_ADMIN_TOKEN });
const create = async (req) => admin.raw.createKey({ name: "ts-kit", owner: "acme-ts", ...req }, admin.callOptions());
const good = await create({ scopes: ["read"] });
const gone = await create({ scopes: ["read"] });
await admin.raw.revokeKey({ id: gone.key.id }, admin.callOptions());
const limitedFetch = await create({ scopes: ["read"], rateLimit: { limit: 1n, period: { seconds: 3600n, nanos: 0 } } });
const limitedExpress = await create({ scopes: ["read"], rateLimit: { limit: 1n, period: { seconds: 3600n, nanos: 0 } } });

await check("verify_valid", async () => {
  assert.equal(await allowed(good.secret), true);
  const res = await verifyKey(good.secret);
  assert.equal(res.code, "VALID");
  assert.equal(res.key.id, good.key.id);
  assert.equal(res.key.owner, "acme-ts");
  assert.deepEqual(res.key.scopes, ["read"]);
});
await check("verify_wrong", async () => {
  const res = await verifyKey(good.secret.slice(0, -4) + "AAAA");
  assert.equal(res.valid, false);
  assert.ok(res.code === "NOT_FOUND" || res.code === "MALFORMED", res.code);
});
await check("verify_malformed", async () => assert.equal((await verifyKey("not-a-key")).code, "MALFORMED"));
await check("verify_revoked", async () => {
  assert.equal(await allowed(gone.secret), false);
  assert.equal((await verifyKey(gone.secret)).code, "REVOKED");
});
await check("verify_scope", async () => assert.equal((await verifyKey(good.secret, { requiredScopes: ["write"] })).code, "INSUFFICIENT_SCOPE"));
await check("error_unavailable", async () => {
  const srv = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => srv.once("listening", r));
  const port = srv.address().port;
  srv.close();
  const dead = createKeyservice({ address: `127.0.0.1:${port}`, timeoutMs: 2000 });
  await assert.rejects(dead.verifyKey(good.secret, { cost: 0 }), (e) => {
    assert.ok(e instanceof KeyserviceError);
    assert.equal(e.code, "UNAVAILABLE");
    assert.ok(!e.message.includes(good.secret), "the key is in the error");
    return true;
  });
});

// The answers every middleware must give (forward-auth's).
const C = `Bearer realm="keyservice"`;
const cases = (limited) => [
  ["valid", good.secret, null],
  ["missing", null, C],
  ["wrong", "ks_definitelynotakey", `${C}, error="invalid_token"`],
  ["revoked", gone.secret, `${C}, error="invalid_token"`],
  ["limited_first", limited.secret, null],
  ["limited", limited.secret, null],
];
const checkAnswer = (kind, name, status, headers, seen, www, limited) => {
  if (name === "valid" || name === "limited_first") {
    assert.equal(status, 204, `${kind} ${name}: status`);
    assert.equal(seen.id, name === "valid" ? good.key.id : limited.key.id, `${kind} ${name}: identity`);
    assert.equal(seen.auth, null, `${kind} ${name}: the key header reached the app`);
  } else if (name === "limited") {
    assert.equal(status, 429, `${kind} limited: status`);
    assert.ok(Number(headers.get("retry-after")) >= 1, `${kind} limited: Retry-After`);
    assert.equal(headers.get("ratelimit-limit"), "1");
    assert.equal(headers.get("ratelimit-remaining"), "0");
    assert.ok(headers.get("ratelimit-reset"));
    assert.equal(headers.get("x-refused-by"), "key");
  } else {
    assert.equal(status, 401, `${kind} ${name}: status`);
    assert.equal(headers.get("www-authenticate"), www, `${kind} ${name}: WWW-Authenticate`);
  }
};

// --- README: fetch ---
const handler = withKeyservice(async (req, { key }) => new Response(`hello, ${key.owner}`), { requiredScopes: ["read"] });
// export default { fetch: handler };   (Deno, Bun, Hono, a Next.js route: the same shape)
// --- end ---

await check("fetch", async () => {
  let seen;
  const h = withKeyservice(async (req, { key }) => {
    seen = { id: key.id, auth: req.headers.get("authorization") };
    return new Response(null, { status: 204 });
  }, { requiredScopes: ["read"] });
  for (const [name, key, www] of cases(limitedFetch)) {
    seen = undefined;
    const headers = key ? { authorization: `Bearer ${key}` } : {};
    const res = await h(new Request("http://app.test/x", { headers }));
    checkAnswer("fetch", name, res.status, res.headers, seen, www, limitedFetch);
    if (res.status !== 204) assert.equal(seen, undefined, "a refused request reached the handler");
  }
  const scoped = withKeyservice(async () => new Response(null, { status: 204 }), { requiredScopes: ["write"] });
  const res = await scoped(new Request("http://app.test/x", { headers: { authorization: `Bearer ${good.secret}` } }));
  assert.equal(res.status, 403);
  assert.equal(res.headers.get("www-authenticate"), `${C}, error="insufficient_scope"`);
  const hello = await handler(new Request("http://app.test/x", { headers: { authorization: `Bearer ${good.secret}` } }));
  assert.equal(await hello.text(), "hello, acme-ts");
});

await check("express", async () => {
  // --- README: express ---
  const requireKey = expressMiddleware({ requiredScopes: ["read"] });
  // app.use("/v1", requireKey);  then req.keyservice.owner in your routes
  // --- end ---
  const scoped = expressMiddleware({ requiredScopes: ["write"] });
  let seen;
  const server = http.createServer((req, res) => {
    const mw = req.url === "/scoped" ? scoped : requireKey;
    mw(req, res, (err) => {
      if (err) {
        res.statusCode = 500;
        res.end();
        return;
      }
      seen = { id: req.keyservice.id, auth: req.headers.authorization ?? null };
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    for (const [name, key, www] of cases(limitedExpress)) {
      seen = undefined;
      const headers = key ? { authorization: `Bearer ${key}` } : {};
      const res = await fetch(`${base}/x`, { headers });
      checkAnswer("express", name, res.status, res.headers, seen, www, limitedExpress);
      if (res.status !== 204) assert.equal(seen, undefined, "a refused request reached the route");
    }
    const res = await fetch(`${base}/scoped`, { headers: { authorization: `Bearer ${good.secret}` } });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("www-authenticate"), `${C}, error="insufficient_scope"`);
  } finally {
    server.close();
  }
});

console.log(JSON.stringify({ ok: true, checks }));
process.exit(0);
