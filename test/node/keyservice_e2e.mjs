// End-to-end check of the generated TypeScript/JavaScript client: create,
// validate, revoke, validate again, over gRPC with connect-node.
// Run by internal/server's TestTypeScriptClient against a real server:
//   KEYSERVICE_ADDR=127.0.0.1:9090 KEYSERVICE_ADMIN_TOKEN=... node test/node/keyservice_e2e.mjs
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Code, KeyService } from "../../api/gen/es/keyservice/v1/keyservice_pb.js";

const transport = createGrpcTransport({ baseUrl: `http://${process.env.KEYSERVICE_ADDR}` });
const client = createClient(KeyService, transport);
const admin = { headers: { authorization: `Bearer ${process.env.KEYSERVICE_ADMIN_TOKEN}` } };

const created = await client.createKey({ name: "from-node", owner: "acme", scopes: ["read"] }, admin);
assert.ok(created.secret.startsWith("ks_"), "a secret is returned once");

let res = await client.validate({ key: created.secret });
assert.equal(res.valid, true);
assert.equal(res.code, Code.VALID);
assert.equal(res.key?.owner, "acme");

const revoked = await client.revokeKey({ id: created.key.id }, admin);
assert.ok(revoked.key?.revokedAt, "revoked_at is set");

res = await client.validate({ key: created.secret });
assert.equal(res.valid, false);
assert.equal(res.code, Code.REVOKED);

console.log(JSON.stringify({ ok: true, id: created.key.id }));
