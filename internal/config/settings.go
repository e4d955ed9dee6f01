package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/perm"
)

//go:generate go run ../docmarkers/cmd/gendocs settings ../../docs/configuration.md

// settings declares every setting of the service, bound to c's fields: one
// entry per setting, holding its variable, flag, kind, default, rule and
// help. A new setting is a field in Config (or in the sub-config of the
// package that uses it) and an entry here; `make generate` then rewrites
// the table in docs/configuration.md.
func (c *Config) settings() []Setting {
	return []Setting{
		str(&c.DatabaseURL, "DATABASE_URL", "database-url", "", rule[string]{"required: `postgres://…` or `key=value …`", checkDatabaseURL},
			"PostgreSQL URL"),
		str(&c.DatabaseReadURL, "KEYSERVICE_DATABASE_READ_URL", "database-read-url", "", rule[string]{"empty, or like `DATABASE_URL` (several hosts: `host=a,b target_session_attrs=prefer-standby`)", func(u string) error {
			if u == "" {
				return nil
			}
			return checkDatabaseURL(u)
		}}, "read replicas: lookups, full reads, snapshot loads and the warm start read there, writes, LISTEN and the sync stay on `DATABASE_URL`; replica lag never changes an answer (see [Scaling](scaling.md)); empty: everything on `DATABASE_URL`"),
		str(&c.GRPCAddr, "KEYSERVICE_GRPC_ADDR", "grpc-addr", ":9090", hostPort,
			"gRPC listen address"),
		str(&c.HTTPAddr, "KEYSERVICE_HTTP_ADDR", "http-addr", ":8080", rule[string]{"`host:port`, not the gRPC address", func(a string) error {
			if err := hostPort.check(a); err != nil {
				return err
			}
			if a == c.GRPCAddr && !strings.HasSuffix(a, ":0") {
				return errors.New("must differ from KEYSERVICE_GRPC_ADDR")
			}
			return nil
		}}, "HTTP listen address: REST, health, metrics, OpenAPI"),
		str(&c.DebugAddr, "KEYSERVICE_DEBUG_ADDR", "debug-addr", "", rule[string]{"empty, or `host:port` on loopback (`:6060` binds 127.0.0.1)", checkDebugAddr},
			"debug listener: pprof (`/debug/pprof/`) and the Go runtime's metrics (`/debug/runtime/metrics`), unauthenticated, so loopback only; off when empty"),
		secret("KEYSERVICE_ADMIN_TOKENS", "admin-tokens",
			&adminTokens{tokens: &c.AdminTokens, names: &c.AdminNames, err: &c.adminTokensErr},
			func() { c.AdminTokens, c.AdminNames, c.adminTokensErr = nil, nil, nil },
			fmt.Sprintf("entries `name:token` or a bare token, each token ≥ %d characters", MinTokenLen), c.checkAdminTokens,
			"comma-separated admin tokens, each `name:token` or a bare token (named `admin-1`, `admin-2`… by position); the name is the actor in the audit trail; none: admin calls are refused (prefer the variable: flags show in ps)"),
		def(permsKind, &c.AdminPermissions, "KEYSERVICE_ADMIN_PERMISSIONS", "admin-permissions", nil, rule[map[string]perm.Set]{"names of KEYSERVICE_ADMIN_TOKENS", func(m map[string]perm.Set) error {
			for name := range m {
				if !slices.Contains(c.AdminNames, name) {
					return fmt.Errorf("%s is not the name of an admin token", name)
				}
			}
			return nil
		}}, "what named admin tokens may do, when not everything (see [Tenancy](tenancy.md))"),
		secret("KEYSERVICE_SEAL_KEY", "seal-key", &secretString{&c.SealKey}, func() { c.SealKey = "" },
			fmt.Sprintf("≥ %d characters", MinTokenLen), func() error {
				if c.SealKey != "" && len(c.SealKey) < MinTokenLen {
					return fmt.Errorf("must be at least %d characters", MinTokenLen)
				}
				return nil
			},
			"the secret the answers kept for retried writes are sealed with and page tokens signed with, the same on every replica; none: derived from `KEYSERVICE_ADMIN_TOKENS` (with neither, writes with a `request_id` are refused)").see("[Tenancy](tenancy.md#rotating-a-bootstrap-token-away)"),
		def(boolean, &c.RequireCaller, "KEYSERVICE_REQUIRE_CALLER", "require-caller", false, anyValue[bool](),
			"`Validate` needs a credential (or a client certificate) even when no caller token or client CA is configured"),
		def(boolean, &c.ClientCache, "KEYSERVICE_CLIENT_CACHE", "client-cache", true, anyValue[bool](),
			"`Validate` marks `cacheable` the `VALID` answers a caller following `WatchKeyEvents` may keep: keys without a rate limit of their own, credits, an owner budget or allowed addresses (calls answered from a caller's cache spend no `KEYSERVICE_KEY_RATE` budget and are not in the usage history); off: no answer is cacheable").see("[Clients](clients.md#the-go-clients-cache)"),
		def(boolean, &c.Console, "KEYSERVICE_CONSOLE", "console", true, anyValue[bool](),
			"the operators' console at `/console` on the HTTP port: sign in with a credential; keys, usage charts, audit trail, keyspaces, credentials (see [Console](console.md)); `false` turns it off").see("[Console](console.md)"),
		str(&c.KeyPrefix, "KEYSERVICE_KEY_PREFIX", "key-prefix", keys.DefaultPrefix, rule[string]{"a-z, 0-9", func(p string) error {
			if err := keys.ValidatePrefix(p); err != nil {
				return err
			}
			if c.signingKeysErr != nil { // reported by KEYSERVICE_SIGNING_KEYS
				return nil
			}
			_, err := c.KeyFormat() // names the setting at fault
			return err
		}}, "prefix of new keys"),
		str(&c.SignedKeyPrefix, "KEYSERVICE_SIGNED_KEY_PREFIX", "signed-key-prefix", "kss", rule[string]{doc: "a-z, 0-9, not the key prefix"},
			"prefix of signed keys").see("[Signed keys](keys.md#signed-keys)"),
		secret("KEYSERVICE_SIGNING_KEYS", "signing-keys",
			&signingKeys{ks: &c.SigningKeys, err: &c.signingKeysErr},
			func() { c.SigningKeys, c.signingKeysErr = nil, nil },
			"entries `kid:<base64 secret ≥ 32 bytes>`", func() error { return c.signingKeysErr },
			"comma-separated signing secrets; the first signs new signed keys, all verify; none: no signed keys (prefer the variable)"),
		str(&c.DefaultKeyFormat, "KEYSERVICE_DEFAULT_KEY_FORMAT", "default-key-format", "checksum", rule[string]{"`checksum` or `signed` (needs signing keys)", func(f string) error {
			if err := oneOf("checksum", "signed").check(f); err != nil {
				return err
			}
			if f == "signed" && len(c.SigningKeys) == 0 && c.signingKeysErr == nil {
				return errors.New("signed needs KEYSERVICE_SIGNING_KEYS")
			}
			return nil
		}}, "format of keys created without one"),
		def(legacyKind, &c.LegacyFormats, "KEYSERVICE_LEGACY_FORMATS", "legacy-formats", nil, anyValue[[]keys.Legacy](),
			"formats of imported keys"),
		def(list, &c.LegacyRefuse, "KEYSERVICE_LEGACY_REFUSE", "legacy-refuse", nil, rule[[]string]{doc: "names of legacy formats"},
			"legacy formats whose keys are refused (`MALFORMED`)"),
		def(boolean, &c.Migrate, "KEYSERVICE_MIGRATE", "migrate", false, anyValue[bool](),
			"apply pending migrations before serving"),
		def(whole, &c.DBMaxConns, "KEYSERVICE_DB_MAX_CONNS", "db-max-conns", 16, between(2, 1000),
			"pool size; `KEYSERVICE_LOOKUP_CONCURRENCY` + 1 of them are opened at start and kept open").
			see("[connections per replica](scaling.md#connections-per-replica-and-what-happens-at-the-limit)"),
		def(duration, &c.DBConnectTimeout, "KEYSERVICE_DB_CONNECT_TIMEOUT", "db-connect-timeout", 5*time.Second, positive(),
			"timeout to open a database connection"),
		def(duration, &c.DBAcquireTimeout, "KEYSERVICE_DB_ACQUIRE_TIMEOUT", "db-acquire-timeout", time.Second, positive(),
			"longest wait for a pooled connection"),
		def(duration, &c.DBStatementTimeout, "KEYSERVICE_DB_STATEMENT_TIMEOUT", "db-statement-timeout", 5*time.Second, positive(),
			"`statement_timeout` of every connection"),
		def(duration, &c.ReadyInterval, "KEYSERVICE_READY_INTERVAL", "ready-interval", 2*time.Second, positive(),
			"how often readiness (database, schema) is checked"),
		def(duration, &c.ShutdownTimeout, "KEYSERVICE_SHUTDOWN_TIMEOUT", "shutdown-timeout", 15*time.Second, positive(),
			"how long SIGTERM waits for in-flight calls"),
		def(duration, &c.ShutdownDelay, "KEYSERVICE_SHUTDOWN_DELAY", "shutdown-delay", 0, rule[time.Duration]{"≥ 0", func(d time.Duration) error {
			if d < 0 {
				return fmt.Errorf("must be 0 or a positive duration, got %s", d)
			}
			return nil
		}}, "after SIGTERM, keep serving (not ready) this long before draining, so load balancers stop sending calls first"),
		def(whole, &c.MaxRequestBytes, "KEYSERVICE_MAX_REQUEST_BYTES", "max-request-bytes", 4<<20, atLeast(1024),
			"largest request body (gRPC message or REST body)"),
		def(whole, &c.MaxHeaderBytes, "KEYSERVICE_MAX_HEADER_BYTES", "max-header-bytes", 16<<10, between(1024, 1<<20),
			"largest header list of a call, name + value + 32 bytes per field (HTTP headers with the method, scheme, host and path; gRPC metadata with the method's path); past it the call is refused (HTTP 431, gRPC `RESOURCE_EXHAUSTED`)").
			see("[Security](security.md)"),
		def(whole, &c.MaxStreams, "KEYSERVICE_MAX_STREAMS", "max-streams", 256, atLeast(1),
			"concurrent gRPC calls per connection"),
		def(whole, &c.MaxConns, "KEYSERVICE_MAX_CONNS", "max-conns", 0, derived,
			"connections each listener (gRPC, HTTP) holds; over it a new one is closed at once, and its last tenth is kept for addresses holding none; 0: derived from the open file limit").
			see("[Security](security.md)"),
		def(whole, &c.MaxConnsPerAddr, "KEYSERVICE_MAX_CONNS_PER_ADDR", "max-conns-per-addr", 0, derived,
			"connections one client address (IPv6: its /64) holds on each listener, trusted proxies exempt; 0: an eighth of `--max-conns`"),
		def(duration, &c.ConnIdle, "KEYSERVICE_CONN_IDLE", "conn-idle", 5*time.Minute, positive(),
			"a connection with no call this long is closed (gRPC and HTTP)"),
		def(duration, &c.RequestReadTimeout, "KEYSERVICE_REQUEST_READ_TIMEOUT", "request-read-timeout", 10*time.Second, positive(),
			"a call on the gRPC port (any service) whose request (a stream's first message) has not arrived this long after its headers is cancelled"),
		def(duration, &c.IdempotencyWindow, "KEYSERVICE_IDEMPOTENCY_WINDOW", "idempotency-window", 24*time.Hour, rule[time.Duration]{"1m to 720h", func(d time.Duration) error {
			if d < time.Minute || d > 30*24*time.Hour {
				return fmt.Errorf("must be between 1m and 720h (30 days), got %s", d)
			}
			return nil
		}}, "how long an admin write made with a `request_id` is remembered (its answer sealed) and answered again to a retry").
			see("[Retrying admin writes](api.md#retrying-admin-writes-request_id)"),
		def(level, &c.LogLevel, "KEYSERVICE_LOG_LEVEL", "log-level", 0, anyValue[slog.Level](),
			"lowest level of the lines logged"),
		str(&c.LogFormat, "KEYSERVICE_LOG_FORMAT", "log-format", "json", oneOf("json", "text"),
			"log line format"),

		// The fast path: validate.Tuning.
		def(number, &c.FilterFPRate, "KEYSERVICE_FILTER_FP_RATE", "filter-fp-rate", 0.001, rule[float64]{"> 0 and < 0.5", func(f float64) error {
			if f <= 0 || f >= 0.5 {
				return fmt.Errorf("must be between 0 and 0.5 (for example 0.001), got %g", f)
			}
			return nil
		}}, "target false-positive rate of the Bloom filter of active keys"),
		def(duration, &c.SyncInterval, "KEYSERVICE_SYNC_INTERVAL", "sync-interval", 5*time.Second, positive(),
			"how often new and revoked keys are read from the database (catch-up for NOTIFY)"),
		def(whole, &c.SyncPageSize, "KEYSERVICE_SYNC_PAGE_SIZE", "sync-page-size", 10_000, between(100, 1_000_000),
			"most rows one statement of the incremental sync reads: a bulk import is read in pages of this many"),
		def(duration, &c.SyncOverlap, "KEYSERVICE_SYNC_OVERLAP", "sync-overlap", 30*time.Second, positive(),
			"how far behind its watermark each sync reads again, for late commits"),
		def(duration, &c.RebuildInterval, "KEYSERVICE_REBUILD_INTERVAL", "rebuild-interval", time.Hour, positive(),
			"full filter rebuild period (±10% jitter); drops revoked and expired keys"),
		def(boolean, &c.Snapshots, "KEYSERVICE_FILTER_SNAPSHOTS", "filter-snapshots", true, anyValue[bool](),
			"one replica per rebuild interval reads the table and writes the filter as a snapshot; the others load it").
			see("[docs/scaling.md](scaling.md)"),
		def(duration, &c.EndedKeptFor, "KEYSERVICE_ENDED_KEPT_FOR", "ended-kept-for", 30*24*time.Hour, positive(),
			"keys revoked or expired this recently stay in the filter, answered `REVOKED`/`EXPIRED` rather than `NOT_FOUND`"),
		def(whole, &c.MemoryBudgetMiB, "KEYSERVICE_MEMORY_BUDGET_MIB", "memory-budget-mib", 256, between(0, 1<<20),
			"when every active key's record fits this many MiB, a replica holds them all and answers first-seen keys without a lookup, even with the database down (memory mode); otherwise the filter, the caches and lookups answer; 0: never (see [Scaling](scaling.md))"),
		def(duration, &c.PositiveTTL, "KEYSERVICE_CACHE_TTL", "cache-ttl", 30*time.Second, positive(),
			"how long a found key is trusted without a lookup"),
		def(whole, &c.PositiveSize, "KEYSERVICE_CACHE_SIZE", "cache-size", 100_000, atLeast(1),
			"positive cache entries"),
		def(duration, &c.StaleFor, "KEYSERVICE_CACHE_STALE_FOR", "cache-stale-for", 5*time.Minute, positive(),
			"how long past its TTL a cached key may still be served while the database cannot answer in time"),
		def(duration, &c.NegativeTTL, "KEYSERVICE_NEGATIVE_CACHE_TTL", "negative-cache-ttl", 30*time.Second, positive(),
			"how long unknown, revoked and expired answers are remembered"),
		def(whole, &c.NegativeSize, "KEYSERVICE_NEGATIVE_CACHE_SIZE", "negative-cache-size", 100_000, atLeast(1),
			"negative cache entries (separate, so unknown keys cannot evict real ones)"),
		def(whole, &c.LookupConcurrency, "KEYSERVICE_LOOKUP_CONCURRENCY", "lookup-concurrency", 4, rule[int]{"≥ 1, below `KEYSERVICE_DB_MAX_CONNS`", func(n int) error {
			if n < 1 || n >= c.DBMaxConns {
				return fmt.Errorf("must be at least 1 and below KEYSERVICE_DB_MAX_CONNS (%d), so admin calls and sync always find a connection; got %d", c.DBMaxConns, n)
			}
			return nil
		}}, "lookup statements for Validate at once"),
		def(whole, &c.LookupBatch, "KEYSERVICE_LOOKUP_BATCH", "lookup-batch", 256, between(1, 10_000),
			"most keys looked up in one statement"),
		def(duration, &c.LookupTimeout, "KEYSERVICE_LOOKUP_TIMEOUT", "lookup-timeout", 250*time.Millisecond, positive(),
			"a lookup not answered this long after it was asked (queue and statement) is `UNAVAILABLE`"),
		def(duration, &c.UsageFlushInterval, "KEYSERVICE_USAGE_FLUSH_INTERVAL", "usage-flush-interval", 10*time.Second, positive(),
			"`last_used_at` is written in one batch per interval"),
		def(whole, &c.CreditLease, "KEYSERVICE_CREDIT_LEASE", "credit-lease", 1000, between(1, 1_000_000_000_000),
			"the most credits a replica leases at once (never more than 1/16 of what remains): what a crashed replica can lose of one key's or owner's credits (see [Credits](credits.md))"),
		def(duration, &c.CreditIdleReturn, "KEYSERVICE_CREDIT_IDLE_RETURN", "credit-idle-return", 5*time.Second, positive(),
			"a lease of credits unused this long is given back, so other replicas may spend it"),
		def(duration, &c.UsageMinuteRetention, "KEYSERVICE_USAGE_MINUTE_RETENTION", "usage-minute-retention", 7*24*time.Hour, positive(),
			"usage by minute is kept this long (whole days: a day's partition is dropped once all of it is older; see [Usage](usage.md))"),
		def(duration, &c.UsageHourRetention, "KEYSERVICE_USAGE_HOUR_RETENTION", "usage-hour-retention", 90*24*time.Hour, positive(),
			"usage by hour is kept this long"),
		def(duration, &c.UsageDayRetention, "KEYSERVICE_USAGE_DAY_RETENTION", "usage-day-retention", 800*24*time.Hour, positive(),
			"usage by day is kept this long (the billing export reads it)"),

		// Callers and limits: limits.Limits (and CallerTokens, TrustedProxies).
		secret("KEYSERVICE_CALLER_TOKENS", "caller-tokens",
			&callerTokens{m: &c.CallerTokens, err: &c.callerTokensErr},
			func() { c.CallerTokens, c.callerTokensErr = nil, nil },
			fmt.Sprintf("entries `name:token`, each token ≥ %d characters, none shared", MinTokenLen), func() error {
				if c.callerTokensErr != nil {
					return c.callerTokensErr
				}
				return checkCallerTokens(c.CallerTokens)
			},
			"comma-separated caller credentials; when set, Validate needs one (prefer the variable)"),
		def(number, &c.CallerRate, "KEYSERVICE_CALLER_RATE", "caller-rate", 1000, positiveNumber("of calls per second"),
			"calls per second each caller may make"),
		def(whole, &c.CallerBurst, "KEYSERVICE_CALLER_BURST", "caller-burst", 2000, atLeast(1),
			"calls each caller may make at once"),
		def(limitsKind, &c.CallerLimits, "KEYSERVICE_CALLER_LIMITS", "caller-limits", nil, rule[map[string]caller.Budget]{"positive rates and bursts", checkCallerLimits},
			"per-caller overrides of the two above"),
		def(whole, &c.CallerTableSize, "KEYSERVICE_CALLER_TABLE_SIZE", "caller-table-size", 100_000, atLeast(1),
			"caller limiters kept in memory (idle ones are forgotten first)"),
		def(duration, &c.CallerIdle, "KEYSERVICE_CALLER_IDLE", "caller-idle", 10*time.Minute, positive(),
			"a caller's limiter unused this long is forgotten"),
		def(number, &c.FailedRate, "KEYSERVICE_FAILED_RATE", "failed-rate", 10, positiveNumber("per second"),
			"`NOT_FOUND`/`MALFORMED` answers per second allowed per end client (an anonymous address, or a caller's `client_ip`)"),
		def(whole, &c.FailedBurst, "KEYSERVICE_FAILED_BURST", "failed-burst", 100, atLeast(1),
			"`NOT_FOUND`/`MALFORMED` answers allowed at once per end client"),
		def(prefixesKind, &c.TrustedProxies, "KEYSERVICE_TRUSTED_PROXIES", "trusted-proxies", nil, rule[[]netip.Prefix]{"", checkPrefixes},
			"proxies whose `X-Forwarded-For` is believed for REST callers"),
		def(keyRateKind, &c.KeyRate, "KEYSERVICE_KEY_RATE", "key-rate", apikey.RateLimit{Limit: 1000, Period: time.Minute}, rule[apikey.RateLimit]{"limit 1 to 10⁹, period 1ms to 24h", func(apikey.RateLimit) error {
			if c.KeyBurst < 0 { // reported by KEYSERVICE_KEY_BURST
				return nil
			}
			return c.KeyLimit().Valid()
		}}, "default per-key limit, for keys created without one"),
		def(whole, &c.KeyBurst, "KEYSERVICE_KEY_BURST", "key-burst", 0, rule[int]{"≥ 0", func(n int) error {
			if n < 0 {
				return fmt.Errorf("must be 0 (the limit) or more, got %d", n)
			}
			return nil
		}}, "default per-key burst; 0: the limit"),
		str(&c.RedisURL, "KEYSERVICE_REDIS_URL", "redis-url", "", rule[string]{"`redis://host:6379/0`", func(u string) error {
			if u == "" {
				return nil
			}
			if _, err := redis.ParseURL(u); err != nil {
				return errors.New("must be a redis:// URL such as redis://127.0.0.1:6379/0")
			}
			return nil
		}}, "Redis for per-key budgets shared by all replicas; none: local budgets"),
		def(duration, &c.RedisTimeout, "KEYSERVICE_REDIS_TIMEOUT", "redis-timeout", 50*time.Millisecond, positive(),
			"bounds each per-key check in Redis (connect, send, read); past it the local budget answers"),

		// Gateways, leak reports, TLS.
		str(&c.AuthHeader, "KEYSERVICE_AUTH_HEADER", "auth-header", "Authorization", rule[string]{"a header name", func(h string) error {
			if h == "" || strings.ContainsAny(h, " :\t\r\n") {
				return fmt.Errorf("must be a header name such as Authorization or X-API-Key, got %q", h)
			}
			return nil
		}}, "header holding the key for forward-auth (`/v1/auth`) and Envoy ext_authz: `Authorization` (Bearer) or another, such as `X-API-Key`"),
		str(&c.ScanningKeysFile, "KEYSERVICE_SCANNING_KEYS_FILE", "scanning-keys-file", "", anyValue[string](),
			"GitHub's secret scanning public keys (JSON); set: `POST /v1/secret-scanning/reports` takes leak reports"),
		str(&c.ScanningAction, "KEYSERVICE_SCANNING_ACTION", "scanning-action", "revoke", oneOf("revoke", "flag"),
			"what a leak report of a live key does: `revoke` it, or `flag` it (record the report only)"),
		str(&c.TLSCertFile, "KEYSERVICE_TLS_CERT_FILE", "tls-cert-file", "", rule[string]{"set with the key file", func(f string) error {
			if (f == "") != (c.TLSKeyFile == "") {
				return errors.New("and KEYSERVICE_TLS_KEY_FILE must be set together")
			}
			return nil
		}}, "serve gRPC and HTTP over TLS with this certificate (PEM)"),
		str(&c.TLSKeyFile, "KEYSERVICE_TLS_KEY_FILE", "tls-key-file", "", rule[string]{doc: "set with the certificate"},
			"private key of the TLS certificate (PEM)"),
		str(&c.TLSClientCAFile, "KEYSERVICE_TLS_CLIENT_CA_FILE", "tls-client-ca-file", "", rule[string]{"needs the certificate", func(f string) error {
			if f != "" && c.TLSCertFile == "" {
				return errors.New("needs KEYSERVICE_TLS_CERT_FILE and KEYSERVICE_TLS_KEY_FILE")
			}
			return nil
		}}, "CA bundle for client certificates; a verified certificate identifies the caller, and Validate then needs a caller credential"),
	}
}

// str declares a string setting; its flag is the flag package's own
// string flag, whose --help quotes the default.
func str(p *string, env, flagName, dflt string, r rule[string], help string) Setting {
	s := def(text, p, env, flagName, dflt, r, help)
	s.register = func(fs *flag.FlagSet, usage string) { fs.StringVar(p, flagName, *p, usage) }
	return s
}

// secret declares a credential: v never fails to parse and never prints
// a value (the flag package prints a value it refuses); its problems are
// check's, which names entries by position or name only.
func secret(env, flagName string, v flag.Value, reset func(), ruleDoc string, check func() error, help string) Setting {
	return Setting{
		Env: env, Flag: flagName, Help: help, Type: "secret list", Written: "comma-separated; never printed, and no message shows a token",
		Rule: ruleDoc, Secret: true, arg: "list",
		value: func() flag.Value { return v }, reset: reset, check: check,
	}
}

var hostPort = rule[string]{"`host:port`", func(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port (for example :9090 or 127.0.0.1:9090)", addr)
	}
	return nil
}}

// checkDebugAddr: empty, or host:port whose host is loopback (or empty).
func checkDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for example :6060 or 127.0.0.1:6060)", addr)
	}
	if host == "" || host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: the debug listener is unauthenticated (use 127.0.0.1 or ::1, and port-forward to reach it)", host)
	}
	return nil
}

// derived is the rule of a limit whose 0 means "derived".
var derived = rule[int]{"≥ 0 (0: derived)", func(n int) error {
	if n < 0 {
		return fmt.Errorf("must be 0 (derived from the open file limit) or more, got %d", n)
	}
	return nil
}}

func checkDatabaseURL(u string) error {
	switch {
	case u == "":
		return errors.New("is required (for example postgres://user@127.0.0.1:5432/keyservice)")
	case !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") && !strings.Contains(u, "="):
		return errors.New("must be a postgres:// URL or a key=value connection string")
	}
	return nil
}
