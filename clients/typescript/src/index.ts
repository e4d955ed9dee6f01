// @keyservice/client: verify API keys with keyservice from Node.js.
//
//   import { verifyKey } from "@keyservice/client";
//   const res = await verifyKey(presentedKey);   // KEYSERVICE_ADDR, KEYSERVICE_TOKEN
//   if (res.valid) { ... res.key.owner ... }
//
// A wrong key is an answer (valid false, code says why), never an error:
// verifyKey throws a KeyserviceError only when no answer could be had.
import { Code as ConnectCode, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  Code,
  Holder,
  KeyService,
  type CreditsStatus,
  type Key,
  type RateLimitStatus,
  type ValidateResponse,
} from "../gen/keyservice/v1/keyservice_pb.js";

/** Why a key was answered as it was (the API's Code without CODE_). */
export type VerifyCode =
  | "VALID"
  | "MALFORMED"
  | "NOT_FOUND"
  | "REVOKED"
  | "EXPIRED"
  | "DISABLED"
  | "FORBIDDEN"
  | "INSUFFICIENT_SCOPE"
  | "USAGE_EXCEEDED"
  | "RATE_LIMITED";

/** Who a valid key is. */
export interface KeyIdentity {
  id: string;
  owner: string;
  name: string;
  scopes: string[];
  metadata: Record<string, string>;
  keyspaceId: string;
}

/** A budget's state: calls allowed per period, left, and seconds until full. */
export interface Budget {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/** Credits left, and when the next refill is due. */
export interface Credits {
  remaining: number;
  nextRefillAt?: Date;
}

/** keyservice's answer about a key. */
export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  /** The key's record when it exists (not on FORBIDDEN). */
  key?: KeyIdentity;
  rateLimit?: Budget;
  ownerRateLimit?: Budget;
  credits?: Credits;
  ownerCredits?: Credits;
  /** On RATE_LIMITED and USAGE_EXCEEDED: whose budget refused. */
  refusedBy?: "key" | "owner";
  /** The whole generated message. */
  raw: ValidateResponse;
}

/** What one verification asks for. */
export interface VerifyOptions {
  /** Scopes the key must all hold (else INSUFFICIENT_SCOPE). */
  requiredScopes?: string[];
  /** The keyspace (name or id) the key must belong to. */
  keyspace?: string;
  /** The end client's address (allowed_cidrs, the failed-attempt guard). */
  clientIp?: string;
  /** Budget spent: 1 when unset; 0 checks without spending. */
  cost?: number;
}

/** No answer could be had. code is the gRPC code's name ("UNAVAILABLE"). */
export class KeyserviceError extends Error {
  readonly code: string;
  /** Seconds, when keyservice said when to try again (its caller limit). */
  readonly retryAfter?: number;
  constructor(code: string, message: string, retryAfter?: number) {
    super(`keyservice: ${code}: ${message}`);
    this.name = "KeyserviceError";
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** How to reach keyservice. */
export interface ClientOptions {
  /** host:port of keyservice's gRPC listener. */
  address: string;
  /** A credential with keys.validate, sent as "authorization: Bearer <token>". */
  token?: string;
  /** Connect over TLS (https); plaintext by default. */
  tls?: boolean;
  /** Per call, 5000 by default. */
  timeoutMs?: number;
  /** Extra tries after UNAVAILABLE, for calls that spend nothing (cost 0); 2 by default. */
  retries?: number;
}

/** A connection to keyservice; make one and share it. */
export interface Keyservice {
  verifyKey(key: string, opts?: VerifyOptions): Promise<VerifyResult>;
  /** The generated client, for admin calls (pass callOptions() as their options). */
  raw: Client<typeof KeyService>;
  /** Call options carrying the credential and the timeout. */
  callOptions(): { headers?: Record<string, string>; timeoutMs: number };
}

const grpcNames: Record<number, string> = {
  [ConnectCode.Canceled]: "CANCELLED",
  [ConnectCode.Unknown]: "UNKNOWN",
  [ConnectCode.InvalidArgument]: "INVALID_ARGUMENT",
  [ConnectCode.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [ConnectCode.NotFound]: "NOT_FOUND",
  [ConnectCode.AlreadyExists]: "ALREADY_EXISTS",
  [ConnectCode.PermissionDenied]: "PERMISSION_DENIED",
  [ConnectCode.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [ConnectCode.FailedPrecondition]: "FAILED_PRECONDITION",
  [ConnectCode.Aborted]: "ABORTED",
  [ConnectCode.OutOfRange]: "OUT_OF_RANGE",
  [ConnectCode.Unimplemented]: "UNIMPLEMENTED",
  [ConnectCode.Internal]: "INTERNAL",
  [ConnectCode.Unavailable]: "UNAVAILABLE",
  [ConnectCode.DataLoss]: "DATA_LOSS",
  [ConnectCode.Unauthenticated]: "UNAUTHENTICATED",
};

const codeNames: Record<number, VerifyCode> = {
  [Code.VALID]: "VALID",
  [Code.MALFORMED]: "MALFORMED",
  [Code.NOT_FOUND]: "NOT_FOUND",
  [Code.REVOKED]: "REVOKED",
  [Code.EXPIRED]: "EXPIRED",
  [Code.DISABLED]: "DISABLED",
  [Code.FORBIDDEN]: "FORBIDDEN",
  [Code.INSUFFICIENT_SCOPE]: "INSUFFICIENT_SCOPE",
  [Code.USAGE_EXCEEDED]: "USAGE_EXCEEDED",
  [Code.RATE_LIMITED]: "RATE_LIMITED",
};

function budget(b?: RateLimitStatus): Budget | undefined {
  if (!b) return undefined;
  const reset = b.reset ? Number(b.reset.seconds) + b.reset.nanos / 1e9 : 0;
  return { limit: Number(b.limit), remaining: Number(b.remaining), resetSeconds: reset };
}

function credits(c?: CreditsStatus): Credits | undefined {
  if (!c) return undefined;
  const next = c.nextRefillAt ? new Date(Number(c.nextRefillAt.seconds) * 1000 + c.nextRefillAt.nanos / 1e6) : undefined;
  return { remaining: Number(c.remaining), nextRefillAt: next };
}

function identity(k?: Key): KeyIdentity | undefined {
  if (!k) return undefined;
  return { id: k.id, owner: k.owner, name: k.name, scopes: [...k.scopes], metadata: { ...k.metadata }, keyspaceId: k.keyspaceId };
}

/** The typed form of a Validate answer. */
export function toResult(res: ValidateResponse): VerifyResult {
  // A code newer than this kit is refused as NOT_FOUND is (fail closed).
  const code = codeNames[res.code] ?? "NOT_FOUND";
  return {
    valid: res.valid && code === "VALID",
    code,
    key: identity(res.key),
    rateLimit: budget(res.rateLimit),
    ownerRateLimit: budget(res.ownerRateLimit),
    credits: credits(res.credits),
    ownerCredits: credits(res.ownerCredits),
    refusedBy: res.refusedBy === Holder.OWNER ? "owner" : res.refusedBy === Holder.KEY ? "key" : undefined,
    raw: res,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects to keyservice (lazily; the connection is kept). */
export function createKeyservice(opts: ClientOptions): Keyservice {
  const transport = createGrpcTransport({ baseUrl: `${opts.tls ? "https" : "http"}://${opts.address}` });
  const raw = createClient(KeyService, transport);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const retries = opts.retries ?? 2;
  const callOptions = () => ({
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : undefined,
    timeoutMs,
  });
  return {
    raw,
    callOptions,
    async verifyKey(key: string, v: VerifyOptions = {}): Promise<VerifyResult> {
      const req = {
        key,
        cost: v.cost,
        clientIp: v.clientIp ?? "",
        requiredScopes: v.requiredScopes ?? [],
        keyspace: v.keyspace ?? "",
      };
      // A call that spends (cost unset is 1) may have spent before it
      // failed: only a call that spends nothing is tried again.
      const tries = v.cost === 0 ? 1 + retries : 1;
      for (let i = 0; ; i++) {
        try {
          return toResult(await raw.validate(req, callOptions()));
        } catch (e) {
          const err = ConnectError.from(e);
          if (err.code === ConnectCode.Unavailable && i + 1 < tries) {
            await sleep(50 << i);
            continue;
          }
          const ra = Number(err.metadata.get("retry-after"));
          // The key is never part of the message.
          throw new KeyserviceError(grpcNames[err.code] ?? "UNKNOWN", err.rawMessage, Number.isFinite(ra) && ra > 0 ? ra : undefined);
        }
      }
    },
  };
}

let shared: Keyservice | undefined;

/** verifyKey with a connection made from KEYSERVICE_ADDR and KEYSERVICE_TOKEN. */
export function verifyKey(key: string, opts?: VerifyOptions): Promise<VerifyResult> {
  if (!shared) {
    const address = process.env.KEYSERVICE_ADDR;
    if (!address) {
      return Promise.reject(new KeyserviceError("FAILED_PRECONDITION", "KEYSERVICE_ADDR is not set"));
    }
    shared = createKeyservice({ address, token: process.env.KEYSERVICE_TOKEN });
  }
  return shared.verifyKey(key, opts);
}

// ---- Middleware: the answers keyservice's forward-auth gives ----

/** What the middleware does with a request. */
export interface MiddlewareOptions {
  /** The connection (default: one from KEYSERVICE_ADDR / KEYSERVICE_TOKEN). */
  keyservice?: Keyservice;
  /** The header holding the key: "Authorization" (Bearer) by default. */
  header?: string;
  requiredScopes?: string[];
  keyspace?: string;
  cost?: number;
}

/** A refused request's answer. */
export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function challenge(header: string): string {
  return header.toLowerCase() === "authorization" ? `Bearer realm="keyservice"` : `ApiKey realm="keyservice", header="${header}"`;
}

/** The key in a header's value: "Bearer <key>" for Authorization, else the value. */
export function keyFrom(value: string | undefined | null, header: string): string {
  const v = (value ?? "").trim();
  if (header.toLowerCase() === "authorization") {
    const m = /^bearer\s+(.+)$/i.exec(v);
    return m ? m[1].trim() : "";
  }
  return v;
}

const refuse = (status: number, headers: Record<string, string>, error: string): Refusal => ({
  status,
  headers: { "Cache-Control": "no-store", "Content-Type": "application/json", ...headers },
  body: JSON.stringify({ error }) + "\n",
});

/** The refusal for a verification (null: let the request pass). */
export function decide(outcome: VerifyResult | KeyserviceError | undefined, header: string): Refusal | null {
  const base = challenge(header);
  if (outcome === undefined) return refuse(401, { "WWW-Authenticate": base }, "missing_key");
  if (outcome instanceof KeyserviceError) {
    switch (outcome.code) {
      case "RESOURCE_EXHAUSTED":
        return refuse(429, { "Retry-After": String(outcome.retryAfter ?? 1) }, "caller_rate_limited");
      case "UNAVAILABLE":
      case "DEADLINE_EXCEEDED":
        return refuse(503, { "Retry-After": "1" }, "unavailable");
      case "UNAUTHENTICATED":
        return refuse(
          401,
          {
            "WWW-Authenticate": `${base}, error="invalid_caller", error_description="the gateway's caller token (X-Keyservice-Caller-Token) was not accepted"`,
          },
          "invalid_caller",
        );
      case "INVALID_ARGUMENT":
      case "NOT_FOUND":
      case "PERMISSION_DENIED":
        // A keyspace that does not exist or that this caller may not use: no key passes.
        return refuse(401, { "WWW-Authenticate": base }, "invalid_request");
    }
    return refuse(500, {}, "internal");
  }
  const r = outcome;
  const by = r.refusedBy ?? "key";
  switch (r.code) {
    case "VALID":
      return null;
    case "FORBIDDEN":
      return refuse(403, { "WWW-Authenticate": `${base}, error="invalid_token", error_description="not allowed from this address"` }, "forbidden");
    case "INSUFFICIENT_SCOPE":
      return refuse(403, { "WWW-Authenticate": `${base}, error="insufficient_scope"` }, "insufficient_scope");
    case "RATE_LIMITED": {
      const b = (by === "owner" ? r.ownerRateLimit : r.rateLimit) ?? r.rateLimit;
      const secs = String(Math.max(Math.ceil(b?.resetSeconds ?? 1), 1));
      return refuse(
        429,
        { "Retry-After": secs, "RateLimit-Limit": String(b?.limit ?? 0), "RateLimit-Remaining": "0", "RateLimit-Reset": secs, "X-Refused-By": by },
        "rate_limited",
      );
    }
    case "USAGE_EXCEEDED": {
      const c = by === "owner" ? r.ownerCredits : r.credits;
      const h: Record<string, string> = { "X-Refused-By": by, "X-Credits-Remaining": String(c?.remaining ?? 0) };
      if (c?.nextRefillAt) {
        h["X-Credits-Refill"] = c.nextRefillAt.toISOString().replace(/\.\d{3}Z$/, "Z");
        h["Retry-After"] = String(Math.max(Math.ceil((c.nextRefillAt.getTime() - Date.now()) / 1000), 1));
      }
      return refuse(402, h, "usage_exceeded");
    }
  }
  // MALFORMED, NOT_FOUND, REVOKED, EXPIRED, DISABLED look the same from outside.
  return refuse(401, { "WWW-Authenticate": `${base}, error="invalid_token"` }, "invalid_token");
}

async function judge(ks: Keyservice | undefined, key: string, o: MiddlewareOptions, clientIp?: string): Promise<VerifyResult | KeyserviceError> {
  const opts: VerifyOptions = { requiredScopes: o.requiredScopes, keyspace: o.keyspace, cost: o.cost, clientIp };
  try {
    return await (ks ? ks.verifyKey(key, opts) : verifyKey(key, opts));
  } catch (e) {
    if (e instanceof KeyserviceError) return e;
    return new KeyserviceError("UNKNOWN", e instanceof Error ? e.message : String(e));
  }
}

/** A fetch-style handler: (Request) => Response. */
export type FetchHandler<C> = (req: Request, ctx: C & { key: KeyIdentity }) => Response | Promise<Response>;

/**
 * Wraps a fetch-style handler (Deno, Bun, Hono, Next.js route handlers,
 * service workers): a request without a valid key is answered as
 * keyservice's forward-auth would; one with a key goes on without the key
 * header, with the key's identity in ctx.key.
 */
export function withKeyservice<C extends object = object>(handler: FetchHandler<C>, opts: MiddlewareOptions = {}) {
  const header = opts.header ?? "Authorization";
  return async (req: Request, ctx?: C): Promise<Response> => {
    const key = keyFrom(req.headers.get(header), header);
    const outcome = key ? await judge(opts.keyservice, key, opts) : undefined;
    const refusal = decide(outcome, header);
    if (refusal) return new Response(refusal.body, { status: refusal.status, headers: refusal.headers });
    const headers = new Headers(req.headers);
    headers.delete(header);
    const passed = new Request(req, { headers });
    return handler(passed, { ...(ctx ?? ({} as C)), key: (outcome as VerifyResult).key! });
  };
}

/** The parts of a Node.js / Express / Connect request and response used here. */
interface NodeRequest {
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
  keyservice?: KeyIdentity;
}
interface NodeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

/**
 * Express/Connect middleware (also plain node:http): refuses as forward-auth
 * does; on a valid key sets req.keyservice to the key's identity, removes
 * the key header and calls next(). sendPeerAddress passes the socket's
 * address as the end client (not behind a proxy).
 */
export function expressMiddleware(opts: MiddlewareOptions & { sendPeerAddress?: boolean } = {}) {
  const header = opts.header ?? "Authorization";
  const lower = header.toLowerCase();
  return (req: NodeRequest, res: NodeResponse, next: (err?: unknown) => void): void => {
    const raw = req.headers[lower];
    const key = Array.isArray(raw) ? "" : keyFrom(raw, header); // a key sent twice is no key
    const peer = opts.sendPeerAddress ? req.socket?.remoteAddress?.replace(/^::ffff:/, "") : undefined;
    (key ? judge(opts.keyservice, key, opts, peer) : Promise.resolve(undefined)).then(
      (outcome) => {
        const refusal = decide(outcome, header);
        if (refusal) {
          res.statusCode = refusal.status;
          for (const [k, v] of Object.entries(refusal.headers)) res.setHeader(k, v);
          res.end(refusal.body);
          return;
        }
        req.keyservice = (outcome as VerifyResult).key;
        delete req.headers[lower];
        next();
      },
      next,
    );
  };
}
