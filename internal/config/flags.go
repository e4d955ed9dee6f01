package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/keys"
)

// setting binds one Config field to a flag and an environment variable.
// field is a pointer to a string, float64, time.Duration or slog.Level (a
// standard flag), or a flag.Value for what the standard flags read
// differently from what operators write in environment files: whole
// numbers in base 10 only (the standard int flag reads "010" as octal 8),
// booleans as yes/no/on/off too, and the settings holding secrets, which
// never print their value.
type setting struct {
	flag, env, usage string
	field            any
}

func (c *Config) settings() []setting {
	return []setting{
		{"database-url", "DATABASE_URL", "PostgreSQL URL", &c.DatabaseURL},
		{"grpc-addr", "KEYSERVICE_GRPC_ADDR", "gRPC listen address", &c.GRPCAddr},
		{"http-addr", "KEYSERVICE_HTTP_ADDR", "HTTP (REST, health, OpenAPI) listen address", &c.HTTPAddr},
		{"admin-tokens", "KEYSERVICE_ADMIN_TOKENS", "comma-separated admin bearer tokens, each name:token or a bare token (named admin-1, admin-2, ... by position) — the name is the actor in the audit trail; none: admin calls are refused (prefer the env var: flags show in ps)", &adminTokens{tokens: &c.AdminTokens, names: &c.AdminNames, err: &c.adminTokensErr}},
		{"key-prefix", "KEYSERVICE_KEY_PREFIX", "prefix of new keys (a-z, 0-9)", &c.KeyPrefix},
		{"signed-key-prefix", "KEYSERVICE_SIGNED_KEY_PREFIX", "prefix of signed keys (a-z, 0-9), different from --key-prefix", &c.SignedKeyPrefix},
		{"signing-keys", "KEYSERVICE_SIGNING_KEYS", "comma-separated kid:<base64 secret of 32+ bytes>; the first signs new signed keys, all verify (prefer the env var)", &signingKeys{ks: &c.SigningKeys, err: &c.signingKeysErr}},
		{"default-key-format", "KEYSERVICE_DEFAULT_KEY_FORMAT", "format of keys created without one: checksum or signed", &c.DefaultKeyFormat},
		{"legacy-formats", "KEYSERVICE_LEGACY_FORMATS", "formats of imported keys, name:prefix:regex separated by ;", (*legacyFormats)(&c.LegacyFormats)},
		{"legacy-refuse", "KEYSERVICE_LEGACY_REFUSE", "comma-separated legacy formats whose keys are refused (MALFORMED)", (*list)(&c.LegacyRefuse)},
		{"migrate", "KEYSERVICE_MIGRATE", "apply pending migrations before serving", (*boolWord)(&c.Migrate)},
		{"db-max-conns", "KEYSERVICE_DB_MAX_CONNS", "pool size (MaxConns)", (*decimal)(&c.DBMaxConns)},
		{"db-connect-timeout", "KEYSERVICE_DB_CONNECT_TIMEOUT", "timeout to open a database connection", &c.DBConnectTimeout},
		{"db-acquire-timeout", "KEYSERVICE_DB_ACQUIRE_TIMEOUT", "longest wait for a pooled connection", &c.DBAcquireTimeout},
		{"db-statement-timeout", "KEYSERVICE_DB_STATEMENT_TIMEOUT", "statement_timeout of every connection", &c.DBStatementTimeout},
		{"ready-interval", "KEYSERVICE_READY_INTERVAL", "how often readiness (database, schema) is checked", &c.ReadyInterval},
		{"shutdown-timeout", "KEYSERVICE_SHUTDOWN_TIMEOUT", "how long SIGTERM waits for in-flight calls", &c.ShutdownTimeout},
		{"shutdown-delay", "KEYSERVICE_SHUTDOWN_DELAY", "after SIGTERM, keep serving (not ready) this long before draining, so load balancers stop sending calls first", &c.ShutdownDelay},
		{"max-request-bytes", "KEYSERVICE_MAX_REQUEST_BYTES", "largest request body (gRPC message or REST body)", (*decimal)(&c.MaxRequestBytes)},
		{"max-header-bytes", "KEYSERVICE_MAX_HEADER_BYTES", "largest header list of a call, name + value + 32 bytes per field (HTTP headers with the method, scheme, host and path; gRPC metadata with the method's path); past it the call is refused (HTTP 431, gRPC RESOURCE_EXHAUSTED)", (*decimal)(&c.MaxHeaderBytes)},
		{"max-streams", "KEYSERVICE_MAX_STREAMS", "concurrent gRPC calls per connection", (*decimal)(&c.MaxStreams)},
		{"max-conns", "KEYSERVICE_MAX_CONNS", "connections each listener (gRPC, HTTP) holds; over it a new one is closed at once, and its last tenth is kept for addresses holding none; 0: derived from the open file limit", (*decimal)(&c.MaxConns)},
		{"max-conns-per-addr", "KEYSERVICE_MAX_CONNS_PER_ADDR", "connections one client address (IPv6: its /64) holds on each listener, trusted proxies exempt; 0: an eighth of --max-conns", (*decimal)(&c.MaxConnsPerAddr)},
		{"conn-idle", "KEYSERVICE_CONN_IDLE", "a connection with no call this long is closed (gRPC and HTTP)", &c.ConnIdle},
		{"request-read-timeout", "KEYSERVICE_REQUEST_READ_TIMEOUT", "a call on the gRPC port (any service) whose request (a stream's first message) has not arrived this long after its headers is cancelled", &c.RequestReadTimeout},
		{"idempotency-window", "KEYSERVICE_IDEMPOTENCY_WINDOW", "how long an admin write made with a request_id is remembered (its answer sealed) and answered again to a retry", &c.IdempotencyWindow},
		{"log-level", "KEYSERVICE_LOG_LEVEL", "debug, info, warn or error", &c.LogLevel},
		{"log-format", "KEYSERVICE_LOG_FORMAT", "json or text", &c.LogFormat},
		{"filter-fp-rate", "KEYSERVICE_FILTER_FP_RATE", "target false-positive rate of the Bloom filter of active keys", &c.FilterFPRate},
		{"sync-interval", "KEYSERVICE_SYNC_INTERVAL", "how often new and revoked keys are read from the database (catch-up for NOTIFY)", &c.SyncInterval},
		{"sync-overlap", "KEYSERVICE_SYNC_OVERLAP", "how far behind the watermark each sync reads again, for late commits", &c.SyncOverlap},
		{"rebuild-interval", "KEYSERVICE_REBUILD_INTERVAL", "full filter rebuild period (±10% jitter), drops revoked and expired keys", &c.RebuildInterval},
		{"ended-kept-for", "KEYSERVICE_ENDED_KEPT_FOR", "keys revoked or expired this recently stay in the filter, answered REVOKED/EXPIRED rather than NOT_FOUND", &c.EndedKeptFor},
		{"cache-ttl", "KEYSERVICE_CACHE_TTL", "how long a found key is trusted without a lookup", &c.CacheTTL},
		{"cache-size", "KEYSERVICE_CACHE_SIZE", "positive cache entries", (*decimal)(&c.CacheSize)},
		{"cache-stale-for", "KEYSERVICE_CACHE_STALE_FOR", "how long past its TTL a cached key may still be served while the database cannot answer in time", &c.CacheStaleFor},
		{"negative-cache-ttl", "KEYSERVICE_NEGATIVE_CACHE_TTL", "how long unknown, revoked and expired answers are remembered", &c.NegativeCacheTTL},
		{"negative-cache-size", "KEYSERVICE_NEGATIVE_CACHE_SIZE", "negative cache entries (separate, so unknown keys cannot evict real ones)", (*decimal)(&c.NegativeCacheSize)},
		{"lookup-concurrency", "KEYSERVICE_LOOKUP_CONCURRENCY", "lookup statements for Validate at once (below the pool size)", (*decimal)(&c.LookupConcurrency)},
		{"lookup-batch", "KEYSERVICE_LOOKUP_BATCH", "most keys looked up in one statement", (*decimal)(&c.LookupBatch)},
		{"lookup-timeout", "KEYSERVICE_LOOKUP_TIMEOUT", "a lookup not answered this long after it was asked (queue and statement) is UNAVAILABLE", &c.LookupTimeout},
		{"filter-snapshots", "KEYSERVICE_FILTER_SNAPSHOTS", "one replica per rebuild interval reads the table and writes the filter as a snapshot; the others load it", (*boolWord)(&c.FilterSnapshots)},
		{"usage-flush-interval", "KEYSERVICE_USAGE_FLUSH_INTERVAL", "last_used_at is written in one batch per interval", &c.UsageFlushInterval},
		{"caller-tokens", "KEYSERVICE_CALLER_TOKENS", "comma-separated name:token caller credentials; when set, Validate needs one (prefer the env var)", &callerTokens{m: &c.CallerTokens, err: &c.callerTokensErr}},
		{"caller-rate", "KEYSERVICE_CALLER_RATE", "calls per second each caller may make", &c.CallerRate},
		{"caller-burst", "KEYSERVICE_CALLER_BURST", "calls each caller may make at once", (*decimal)(&c.CallerBurst)},
		{"caller-limits", "KEYSERVICE_CALLER_LIMITS", "per-caller overrides, comma-separated name=rate:burst", (*callerLimits)(&c.CallerLimits)},
		{"caller-table-size", "KEYSERVICE_CALLER_TABLE_SIZE", "caller limiters kept in memory (idle ones are forgotten first)", (*decimal)(&c.CallerTableSize)},
		{"caller-idle", "KEYSERVICE_CALLER_IDLE", "a caller's limiter unused this long is forgotten", &c.CallerIdle},
		{"failed-rate", "KEYSERVICE_FAILED_RATE", "NOT_FOUND/MALFORMED answers per second allowed per end client (an anonymous address, or a caller's client_ip)", &c.FailedRate},
		{"failed-burst", "KEYSERVICE_FAILED_BURST", "NOT_FOUND/MALFORMED answers allowed at once per end client", (*decimal)(&c.FailedBurst)},
		{"trusted-proxies", "KEYSERVICE_TRUSTED_PROXIES", "comma-separated CIDRs whose X-Forwarded-For is believed for REST callers", (*prefixes)(&c.TrustedProxies)},
		{"key-rate", "KEYSERVICE_KEY_RATE", "default per-key limit as limit/period, for keys created without one", (*keyRate)(&c.KeyRate)},
		{"key-burst", "KEYSERVICE_KEY_BURST", "default per-key burst; 0: the limit", (*decimal)(&c.KeyBurst)},
		{"redis-url", "KEYSERVICE_REDIS_URL", "Redis for per-key budgets shared by all replicas; empty: local budgets", &c.RedisURL},
		{"redis-timeout", "KEYSERVICE_REDIS_TIMEOUT", "bounds each per-key check in Redis (connect, send, read); past it the local budget answers", &c.RedisTimeout},
		{"auth-header", "KEYSERVICE_AUTH_HEADER", "header holding the key for forward-auth (/v1/auth) and Envoy ext_authz: Authorization (Bearer) or e.g. X-API-Key", &c.AuthHeader},
		{"scanning-keys-file", "KEYSERVICE_SCANNING_KEYS_FILE", "GitHub's secret scanning public keys (JSON); set: POST /v1/secret-scanning/reports takes leak reports", &c.ScanningKeysFile},
		{"scanning-action", "KEYSERVICE_SCANNING_ACTION", "what a leak report of a live key does: revoke, or flag (record only)", &c.ScanningAction},
		{"tls-cert-file", "KEYSERVICE_TLS_CERT_FILE", "serve gRPC and HTTP over TLS with this certificate (PEM)", &c.TLSCertFile},
		{"tls-key-file", "KEYSERVICE_TLS_KEY_FILE", "private key of the TLS certificate (PEM)", &c.TLSKeyFile},
		{"tls-client-ca-file", "KEYSERVICE_TLS_CLIENT_CA_FILE", "CA bundle for client certificates; a verified certificate identifies the caller, and Validate then needs a caller credential", &c.TLSClientCAFile},
	}
}

// register adds s to fs with the standard flag type of its field.
func (s setting) register(fs *flag.FlagSet) {
	usage := s.usage + " (env " + s.env + ")"
	switch p := s.field.(type) {
	case *string:
		fs.StringVar(p, s.flag, *p, usage)
	case *float64:
		fs.Float64Var(p, s.flag, *p, usage)
	case *time.Duration:
		fs.DurationVar(p, s.flag, *p, usage)
	case *slog.Level:
		fs.TextVar(p, s.flag, *p, usage)
	case flag.Value:
		fs.Var(p, s.flag, usage)
	default:
		panic(fmt.Sprintf("config: setting %s has unsupported type %T", s.flag, s.field))
	}
}

// expected says what a standard flag's value must look like (the flag
// package only says "parse error").
func (s setting) expected() string {
	switch s.field.(type) {
	case *float64:
		return "a number"
	case *time.Duration:
		return "a duration such as 250ms, 5s or 1m"
	}
	return ""
}

// Parse fills c from args and the environment (lookup; os.LookupEnv when
// nil). Values already in c are the defaults. A bad environment value is
// an error naming its variable.
func (c *Config) Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	ss := c.settings()
	for _, s := range ss {
		s.register(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range ss {
		if given[s.flag] {
			continue
		}
		if v, ok := lookup(s.env); ok {
			v = strings.TrimSpace(v) // a trailing newline from a file or a ConfigMap
			if err := fs.Set(s.flag, v); err != nil {
				if want := s.expected(); want != "" {
					return fmt.Errorf("%s: %q is not %s", s.env, v, want)
				}
				return fmt.Errorf("%s: %v", s.env, err)
			}
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// callerTokens reads name:token pairs. Its Set never fails, because the
// flag package would print the rejected value, tokens and all: a problem
// is kept for Check, whose messages name entries, never tokens.
type callerTokens struct {
	m   *map[string]string
	err *error
}

func (v *callerTokens) String() string {
	if v.m == nil {
		return ""
	}
	return strings.Repeat("*", min(len(*v.m), 1)*8)
}

func (v *callerTokens) Set(s string) error {
	m := map[string]string{}
	var problem error
	for i, pair := range splitList(s) {
		name, tok, ok := strings.Cut(pair, ":")
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		switch {
		case problem != nil:
		case !ok || !validName(name):
			problem = fmt.Errorf("entries are name:token, names of a-z A-Z 0-9 . _ -; entry %d is not", i+1)
		case tok == "":
			problem = fmt.Errorf("caller %q has no token", name)
		case m[name] != "":
			problem = fmt.Errorf("caller %q is listed twice", name)
		}
		m[name] = tok
	}
	*v.m, *v.err = m, problem
	return nil
}

// adminTokens reads admin tokens, each name:token or a bare token (named
// admin-<position>). Like callerTokens, its Set never fails: a problem is
// kept for Check, whose messages never show a token.
type adminTokens struct {
	tokens, names *[]string
	err           *error
}

func (v *adminTokens) String() string {
	if v.tokens == nil {
		return ""
	}
	return strings.Repeat("*", min(len(*v.tokens), 1)*8)
}

func (v *adminTokens) Set(s string) error {
	var tokens, names []string
	var problem error
	seenName, seenToken := map[string]bool{}, map[string]bool{}
	for i, entry := range splitList(s) {
		name, tok, named := strings.Cut(entry, ":")
		if !named {
			name, tok = fmt.Sprintf("admin-%d", i+1), entry
		}
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		// Messages name entries by position only: a mistyped entry may
		// hold the token on either side of its colon.
		switch {
		case problem != nil:
		case !validName(name):
			problem = fmt.Errorf("entries are name:token or a bare token (a token containing ':' must be given a name: name:token), names of a-z A-Z 0-9 . _ -; entry %d is not", i+1)
		case reservedActors[strings.ToLower(name)]:
			problem = fmt.Errorf("entry %d: the name %s is reserved for the audit trail's own actors", i+1, name)
		case tok == "":
			problem = fmt.Errorf("entry %d has no token", i+1)
		case seenName[name]:
			problem = fmt.Errorf("entry %d: its name is used twice", i+1)
		case seenToken[tok]:
			problem = fmt.Errorf("entry %d: its token is listed twice (each admin needs a token of its own, or the audit trail cannot tell them apart)", i+1)
		}
		seenName[name], seenToken[tok] = true, true
		tokens, names = append(tokens, tok), append(names, name)
	}
	*v.tokens, *v.names, *v.err = tokens, names, problem
	return nil
}

// reservedActors are the audit trail's actors that are not admin tokens.
var reservedActors = map[string]bool{"system": true, "secret-scanning": true}

// signingKeys reads kid:<base64> pairs. Like callerTokens, its Set never
// fails (the flag package would print the secrets).
type signingKeys struct {
	ks  *[]keys.SigningKey
	err *error
}

func (v *signingKeys) String() string {
	if v.ks == nil {
		return ""
	}
	return strings.Repeat("*", min(len(*v.ks), 1)*8)
}

func (v *signingKeys) Set(s string) error {
	*v.ks, *v.err = keys.ParseSigningKeys(s)
	return nil
}

// legacyFormats reads name:prefix:regex entries separated by ";".
type legacyFormats []keys.Legacy

func (v *legacyFormats) String() string {
	var parts []string
	for _, l := range *v {
		parts = append(parts, l.Name+":"+l.Prefix+":"+l.Pattern.String())
	}
	return strings.Join(parts, ";")
}

func (v *legacyFormats) Set(s string) error {
	ls, err := keys.ParseLegacyFormats(s, nil)
	if err != nil {
		return err
	}
	*v = ls
	return nil
}

// list is a plain comma-separated list.
type list []string

func (v *list) String() string     { return strings.Join(*v, ",") }
func (v *list) Set(s string) error { *v = splitList(s); return nil }

// decimal is a whole number in base 10.
type decimal int

func (v *decimal) String() string { return strconv.Itoa(int(*v)) }
func (v *decimal) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	*v = decimal(n)
	return nil
}

// boolWord is a boolean: true/false, 1/0, t/f, yes/no, on/off (any case).
type boolWord bool

func (v *boolWord) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolWord) IsBoolFlag() bool { return true }
func (v *boolWord) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes", "on":
		*v = true
	case "0", "f", "false", "no", "off", "":
		*v = false
	default:
		return errors.New("not a boolean (true or false)")
	}
	return nil
}

// callerLimits reads name=rate:burst overrides.
type callerLimits map[string]caller.Budget

func (v *callerLimits) String() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(*v)) {
		b := (*v)[name]
		parts = append(parts, fmt.Sprintf("%s=%g:%d", name, b.Rate, b.Burst))
	}
	return strings.Join(parts, ",")
}

func (v *callerLimits) Set(s string) error {
	m := map[string]caller.Budget{}
	for _, e := range splitList(s) {
		name, rb, ok1 := strings.Cut(e, "=")
		r, b, ok2 := strings.Cut(rb, ":")
		rate, err1 := strconv.ParseFloat(strings.TrimSpace(r), 64)
		burst, err2 := strconv.Atoi(strings.TrimSpace(b))
		name = strings.TrimSpace(name)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || !validName(name) || rate <= 0 || burst < 1 {
			return fmt.Errorf("entries are name=rate:burst, for example billing=500:1000; got %q", e)
		}
		m[name] = caller.Budget{Rate: rate, Burst: burst}
	}
	*v = m
	return nil
}

// prefixes reads comma-separated CIDRs or single addresses.
type prefixes []netip.Prefix

func (v *prefixes) String() string {
	var parts []string
	for _, p := range *v {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ",")
}

func (v *prefixes) Set(s string) error {
	var out []netip.Prefix
	for _, e := range splitList(s) {
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return fmt.Errorf("%q is neither a CIDR nor an address", e)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	*v = out
	return nil
}

// keyRate reads limit/period, such as 1000/1m.
type keyRate apikey.RateLimit

func (v *keyRate) String() string { return fmt.Sprintf("%d/%s", v.Limit, v.Period) }
func (v *keyRate) Set(s string) error {
	n, p, ok := strings.Cut(s, "/")
	limit, err1 := strconv.Atoi(strings.TrimSpace(n))
	period, err2 := time.ParseDuration(strings.TrimSpace(p))
	if !ok || err1 != nil || err2 != nil || limit < 1 || period <= 0 {
		return fmt.Errorf("must be limit/period such as 1000/1m or 10/1s, got %q", s)
	}
	*v = keyRate{Limit: limit, Period: period}
	return nil
}
