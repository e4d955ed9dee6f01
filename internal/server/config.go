package server

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/ratelimit"
	"github.com/keyservice/keyservice/internal/validate"
)

// Config is every setting of the service. Each has a flag and an
// environment variable; a flag given on the command line wins over the
// variable, which wins over the default.
type Config struct {
	DatabaseURL        string
	GRPCAddr           string
	HTTPAddr           string
	AdminTokens        []string
	KeyPrefix          string
	Migrate            bool
	DBMaxConns         int
	DBConnectTimeout   time.Duration
	DBAcquireTimeout   time.Duration
	DBStatementTimeout time.Duration
	ReadyInterval      time.Duration
	ShutdownTimeout    time.Duration
	MaxRequestBytes    int
	MaxHeaderBytes     int           // largest header list (gRPC metadata, HTTP headers)
	MaxStreams         int           // concurrent gRPC streams per connection
	ConnIdle           time.Duration // an idle connection is closed after this
	RequestReadTimeout time.Duration // a gRPC call whose request has not arrived this long after its headers is cancelled
	LogLevel           string
	LogFormat          string

	// The fast path (see internal/validate).
	FilterFPRate       float64
	SyncInterval       time.Duration
	SyncOverlap        time.Duration
	RebuildInterval    time.Duration
	EndedKeptFor       time.Duration
	CacheTTL           time.Duration
	CacheSize          int
	CacheStaleFor      time.Duration
	NegativeCacheTTL   time.Duration
	NegativeCacheSize  int
	LookupConcurrency  int
	LookupBatch        int
	LookupTimeout      time.Duration
	UsageFlushInterval time.Duration

	// Limits (see internal/ratelimit).
	CallerTokens    []string // name:token pairs
	CallerRate      float64
	CallerBurst     int
	CallerLimits    []string // name=rate:burst overrides
	CallerTableSize int
	CallerIdle      time.Duration
	FailedRate      float64
	FailedBurst     int
	TrustedProxies  []string // CIDRs or addresses
	KeyRate         string   // default per-key limit, "limit/period"
	KeyBurst        int      // 0: the limit
	RedisURL        string
	RedisTimeout    time.Duration

	// AuthHeader is where forward-auth and Envoy ext_authz find the key:
	// "Authorization" (Bearer) or a header such as "X-API-Key".
	AuthHeader string

	// TLS; with a client CA, client certificates identify callers.
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
}

// Defaults returns the default configuration. The fast path's tuning
// comes from validate.Defaults, so the two cannot drift apart.
func Defaults() Config {
	v := validate.Defaults()
	return Config{
		GRPCAddr:           ":9090",
		HTTPAddr:           ":8080",
		KeyPrefix:          keys.DefaultPrefix,
		DBMaxConns:         16,
		DBConnectTimeout:   5 * time.Second,
		DBAcquireTimeout:   time.Second,
		DBStatementTimeout: 5 * time.Second,
		ReadyInterval:      2 * time.Second,
		ShutdownTimeout:    15 * time.Second,
		MaxRequestBytes:    4 << 20,
		MaxHeaderBytes:     16 << 10,
		MaxStreams:         256,
		ConnIdle:           5 * time.Minute,
		RequestReadTimeout: 10 * time.Second,
		LogLevel:           "info",
		LogFormat:          "json",
		FilterFPRate:       v.FilterFPRate,
		SyncInterval:       v.SyncInterval,
		SyncOverlap:        v.SyncOverlap,
		RebuildInterval:    v.RebuildInterval,
		EndedKeptFor:       v.EndedKeptFor,
		CacheTTL:           v.PositiveTTL,
		CacheSize:          v.PositiveSize,
		CacheStaleFor:      v.StaleFor,
		NegativeCacheTTL:   v.NegativeTTL,
		NegativeCacheSize:  v.NegativeSize,
		LookupConcurrency:  v.LookupConcurrency,
		LookupBatch:        v.LookupBatch,
		LookupTimeout:      v.LookupTimeout,
		UsageFlushInterval: v.UsageFlushInterval,
		CallerRate:         1000,
		CallerBurst:        2000,
		CallerTableSize:    100_000,
		CallerIdle:         10 * time.Minute,
		FailedRate:         10,
		FailedBurst:        100,
		KeyRate:            "1000/1m",
		RedisTimeout:       50 * time.Millisecond,
		AuthHeader:         "Authorization",
	}
}

// MinAdminTokenLen is the shortest admin token accepted.
const MinAdminTokenLen = 16

// Validate explains the first bad setting, naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{env}, args...)...))
	}
	if c.DatabaseURL == "" {
		bad("DATABASE_URL", "is required (for example postgres://user@127.0.0.1:5432/keyservice)")
	} else if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") && !strings.Contains(c.DatabaseURL, "=") {
		bad("DATABASE_URL", "must be a postgres:// URL or a key=value connection string")
	}
	for env, addr := range map[string]string{"KEYSERVICE_GRPC_ADDR": c.GRPCAddr, "KEYSERVICE_HTTP_ADDR": c.HTTPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(env, "%q is not host:port (for example :9090 or 127.0.0.1:9090)", addr)
		}
	}
	if c.GRPCAddr == c.HTTPAddr && c.GRPCAddr != "" && !strings.HasSuffix(c.GRPCAddr, ":0") {
		bad("KEYSERVICE_HTTP_ADDR", "must differ from KEYSERVICE_GRPC_ADDR")
	}
	for i, tok := range c.AdminTokens {
		if len(tok) < MinAdminTokenLen {
			bad("KEYSERVICE_ADMIN_TOKENS", "token %d is %d characters; use at least %d random characters", i+1, len(tok), MinAdminTokenLen)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			bad("KEYSERVICE_ADMIN_TOKENS", "token %d contains white space", i+1)
		}
	}
	if err := keys.ValidatePrefix(c.KeyPrefix); err != nil {
		bad("KEYSERVICE_KEY_PREFIX", "%v", err)
	}
	if c.DBMaxConns < 2 || c.DBMaxConns > 1000 {
		bad("KEYSERVICE_DB_MAX_CONNS", "must be between 2 and 1000, got %d", c.DBMaxConns)
	}
	for env, d := range map[string]time.Duration{
		"KEYSERVICE_DB_CONNECT_TIMEOUT":   c.DBConnectTimeout,
		"KEYSERVICE_DB_ACQUIRE_TIMEOUT":   c.DBAcquireTimeout,
		"KEYSERVICE_DB_STATEMENT_TIMEOUT": c.DBStatementTimeout,
		"KEYSERVICE_READY_INTERVAL":       c.ReadyInterval,
		"KEYSERVICE_SHUTDOWN_TIMEOUT":     c.ShutdownTimeout,
		"KEYSERVICE_SYNC_INTERVAL":        c.SyncInterval,
		"KEYSERVICE_SYNC_OVERLAP":         c.SyncOverlap,
		"KEYSERVICE_REBUILD_INTERVAL":     c.RebuildInterval,
		"KEYSERVICE_ENDED_KEPT_FOR":       c.EndedKeptFor,
		"KEYSERVICE_CACHE_TTL":            c.CacheTTL,
		"KEYSERVICE_CACHE_STALE_FOR":      c.CacheStaleFor,
		"KEYSERVICE_NEGATIVE_CACHE_TTL":   c.NegativeCacheTTL,
		"KEYSERVICE_LOOKUP_TIMEOUT":       c.LookupTimeout,
		"KEYSERVICE_USAGE_FLUSH_INTERVAL": c.UsageFlushInterval,
		"KEYSERVICE_CALLER_IDLE":          c.CallerIdle,
		"KEYSERVICE_CONN_IDLE":            c.ConnIdle,
		"KEYSERVICE_REQUEST_READ_TIMEOUT": c.RequestReadTimeout,
		"KEYSERVICE_REDIS_TIMEOUT":        c.RedisTimeout,
	} {
		if d <= 0 {
			bad(env, "must be a positive duration such as 500ms or 5s, got %s", d)
		}
	}
	if c.FilterFPRate <= 0 || c.FilterFPRate >= 0.5 {
		bad("KEYSERVICE_FILTER_FP_RATE", "must be between 0 and 0.5 (for example 0.001), got %g", c.FilterFPRate)
	}
	if c.CacheSize < 1 {
		bad("KEYSERVICE_CACHE_SIZE", "must be at least 1, got %d", c.CacheSize)
	}
	if c.NegativeCacheSize < 1 {
		bad("KEYSERVICE_NEGATIVE_CACHE_SIZE", "must be at least 1, got %d", c.NegativeCacheSize)
	}
	if c.LookupConcurrency < 1 || c.LookupConcurrency >= c.DBMaxConns {
		bad("KEYSERVICE_LOOKUP_CONCURRENCY", "must be at least 1 and below KEYSERVICE_DB_MAX_CONNS (%d), so admin calls and sync always find a connection; got %d", c.DBMaxConns, c.LookupConcurrency)
	}
	if c.LookupBatch < 1 || c.LookupBatch > 10_000 {
		bad("KEYSERVICE_LOOKUP_BATCH", "must be between 1 and 10000, got %d", c.LookupBatch)
	}
	if _, err := c.CallerTokenMap(); err != nil {
		bad("KEYSERVICE_CALLER_TOKENS", "%v", err)
	}
	if _, err := c.CallerOverrides(); err != nil {
		bad("KEYSERVICE_CALLER_LIMITS", "%v", err)
	}
	if c.CallerRate <= 0 {
		bad("KEYSERVICE_CALLER_RATE", "must be a positive number of calls per second, got %g", c.CallerRate)
	}
	if c.CallerBurst < 1 {
		bad("KEYSERVICE_CALLER_BURST", "must be at least 1, got %d", c.CallerBurst)
	}
	if c.CallerTableSize < 1 {
		bad("KEYSERVICE_CALLER_TABLE_SIZE", "must be at least 1, got %d", c.CallerTableSize)
	}
	if c.FailedRate <= 0 {
		bad("KEYSERVICE_FAILED_RATE", "must be a positive number per second, got %g", c.FailedRate)
	}
	if c.FailedBurst < 1 {
		bad("KEYSERVICE_FAILED_BURST", "must be at least 1, got %d", c.FailedBurst)
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		bad("KEYSERVICE_TRUSTED_PROXIES", "%v", err)
	}
	if _, err := c.KeyLimit(); err != nil {
		bad("KEYSERVICE_KEY_RATE", "%v", err)
	}
	if c.KeyBurst < 0 {
		bad("KEYSERVICE_KEY_BURST", "must be 0 (the limit) or more, got %d", c.KeyBurst)
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			bad("KEYSERVICE_REDIS_URL", "must be a redis:// URL such as redis://127.0.0.1:6379/0")
		}
	}
	if c.AuthHeader == "" || strings.ContainsAny(c.AuthHeader, " :\t\r\n") {
		bad("KEYSERVICE_AUTH_HEADER", "must be a header name such as Authorization or X-API-Key, got %q", c.AuthHeader)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("KEYSERVICE_TLS_CERT_FILE", "and KEYSERVICE_TLS_KEY_FILE must be set together")
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		bad("KEYSERVICE_TLS_CLIENT_CA_FILE", "needs KEYSERVICE_TLS_CERT_FILE and KEYSERVICE_TLS_KEY_FILE")
	}
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20 {
		bad("KEYSERVICE_MAX_HEADER_BYTES", "must be between 1024 and 1048576, got %d", c.MaxHeaderBytes)
	}
	if c.MaxStreams < 1 {
		bad("KEYSERVICE_MAX_STREAMS", "must be at least 1, got %d", c.MaxStreams)
	}
	if c.MaxRequestBytes < 1024 {
		bad("KEYSERVICE_MAX_REQUEST_BYTES", "must be at least 1024, got %d", c.MaxRequestBytes)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("KEYSERVICE_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("KEYSERVICE_LOG_FORMAT", "must be json or text, got %q", c.LogFormat)
	}
	// Sort for a stable message: map iteration above is random.
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Logger builds the service logger from the config.
func (c Config) Logger(w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// setting binds one Config field to a flag and an environment variable.
type setting struct {
	flag, env, usage string
	value            flag.Value
}

func (c *Config) settings() []setting {
	return []setting{
		{"database-url", "DATABASE_URL", "PostgreSQL URL", (*stringValue)(&c.DatabaseURL)},
		{"grpc-addr", "KEYSERVICE_GRPC_ADDR", "gRPC listen address", (*stringValue)(&c.GRPCAddr)},
		{"http-addr", "KEYSERVICE_HTTP_ADDR", "HTTP (REST, health, OpenAPI) listen address", (*stringValue)(&c.HTTPAddr)},
		{"admin-tokens", "KEYSERVICE_ADMIN_TOKENS", "comma-separated admin bearer tokens; none: admin calls are refused (prefer the env var: flags show in ps)", (*listValue)(&c.AdminTokens)},
		{"key-prefix", "KEYSERVICE_KEY_PREFIX", "prefix of new keys (a-z, 0-9)", (*stringValue)(&c.KeyPrefix)},
		{"migrate", "KEYSERVICE_MIGRATE", "apply pending migrations before serving", (*boolValue)(&c.Migrate)},
		{"db-max-conns", "KEYSERVICE_DB_MAX_CONNS", "pool size (MaxConns)", (*intValue)(&c.DBMaxConns)},
		{"db-connect-timeout", "KEYSERVICE_DB_CONNECT_TIMEOUT", "timeout to open a database connection", (*durationValue)(&c.DBConnectTimeout)},
		{"db-acquire-timeout", "KEYSERVICE_DB_ACQUIRE_TIMEOUT", "longest wait for a pooled connection", (*durationValue)(&c.DBAcquireTimeout)},
		{"db-statement-timeout", "KEYSERVICE_DB_STATEMENT_TIMEOUT", "statement_timeout of every connection", (*durationValue)(&c.DBStatementTimeout)},
		{"ready-interval", "KEYSERVICE_READY_INTERVAL", "how often readiness (database, schema) is checked", (*durationValue)(&c.ReadyInterval)},
		{"shutdown-timeout", "KEYSERVICE_SHUTDOWN_TIMEOUT", "how long SIGTERM waits for in-flight calls", (*durationValue)(&c.ShutdownTimeout)},
		{"max-request-bytes", "KEYSERVICE_MAX_REQUEST_BYTES", "largest request body (gRPC message or REST body)", (*intValue)(&c.MaxRequestBytes)},
		{"max-header-bytes", "KEYSERVICE_MAX_HEADER_BYTES", "largest header list of a call (gRPC metadata or HTTP headers); past it the call or connection is refused", (*intValue)(&c.MaxHeaderBytes)},
		{"max-streams", "KEYSERVICE_MAX_STREAMS", "concurrent gRPC calls per connection", (*intValue)(&c.MaxStreams)},
		{"conn-idle", "KEYSERVICE_CONN_IDLE", "a connection with no call this long is closed (gRPC and HTTP)", (*durationValue)(&c.ConnIdle)},
		{"request-read-timeout", "KEYSERVICE_REQUEST_READ_TIMEOUT", "a gRPC call whose request has not arrived this long after its headers is cancelled", (*durationValue)(&c.RequestReadTimeout)},
		{"log-level", "KEYSERVICE_LOG_LEVEL", "debug, info, warn or error", (*stringValue)(&c.LogLevel)},
		{"log-format", "KEYSERVICE_LOG_FORMAT", "json or text", (*stringValue)(&c.LogFormat)},
		{"filter-fp-rate", "KEYSERVICE_FILTER_FP_RATE", "target false-positive rate of the Bloom filter of active keys", (*floatValue)(&c.FilterFPRate)},
		{"sync-interval", "KEYSERVICE_SYNC_INTERVAL", "how often new and revoked keys are read from the database (catch-up for NOTIFY)", (*durationValue)(&c.SyncInterval)},
		{"sync-overlap", "KEYSERVICE_SYNC_OVERLAP", "how far behind the watermark each sync reads again, for late commits", (*durationValue)(&c.SyncOverlap)},
		{"rebuild-interval", "KEYSERVICE_REBUILD_INTERVAL", "full filter rebuild period (±10% jitter), drops revoked and expired keys", (*durationValue)(&c.RebuildInterval)},
		{"ended-kept-for", "KEYSERVICE_ENDED_KEPT_FOR", "keys revoked or expired this recently stay in the filter, answered REVOKED/EXPIRED rather than NOT_FOUND", (*durationValue)(&c.EndedKeptFor)},
		{"cache-ttl", "KEYSERVICE_CACHE_TTL", "how long a found key is trusted without a lookup", (*durationValue)(&c.CacheTTL)},
		{"cache-size", "KEYSERVICE_CACHE_SIZE", "positive cache entries", (*intValue)(&c.CacheSize)},
		{"cache-stale-for", "KEYSERVICE_CACHE_STALE_FOR", "how long past its TTL a cached key may still be served while the database cannot answer in time", (*durationValue)(&c.CacheStaleFor)},
		{"negative-cache-ttl", "KEYSERVICE_NEGATIVE_CACHE_TTL", "how long unknown, revoked and expired answers are remembered", (*durationValue)(&c.NegativeCacheTTL)},
		{"negative-cache-size", "KEYSERVICE_NEGATIVE_CACHE_SIZE", "negative cache entries (separate, so unknown keys cannot evict real ones)", (*intValue)(&c.NegativeCacheSize)},
		{"lookup-concurrency", "KEYSERVICE_LOOKUP_CONCURRENCY", "lookup statements for Validate at once (below the pool size)", (*intValue)(&c.LookupConcurrency)},
		{"lookup-batch", "KEYSERVICE_LOOKUP_BATCH", "most keys looked up in one statement", (*intValue)(&c.LookupBatch)},
		{"lookup-timeout", "KEYSERVICE_LOOKUP_TIMEOUT", "a lookup not answered this long after it was asked (queue and statement) is UNAVAILABLE", (*durationValue)(&c.LookupTimeout)},
		{"usage-flush-interval", "KEYSERVICE_USAGE_FLUSH_INTERVAL", "last_used_at is written in one batch per interval", (*durationValue)(&c.UsageFlushInterval)},
		{"caller-tokens", "KEYSERVICE_CALLER_TOKENS", "comma-separated name:token caller credentials; when set, Validate needs one (prefer the env var)", (*listValue)(&c.CallerTokens)},
		{"caller-rate", "KEYSERVICE_CALLER_RATE", "calls per second each caller may make", (*floatValue)(&c.CallerRate)},
		{"caller-burst", "KEYSERVICE_CALLER_BURST", "calls each caller may make at once", (*intValue)(&c.CallerBurst)},
		{"caller-limits", "KEYSERVICE_CALLER_LIMITS", "per-caller overrides, comma-separated name=rate:burst", (*listValue)(&c.CallerLimits)},
		{"caller-table-size", "KEYSERVICE_CALLER_TABLE_SIZE", "caller limiters kept in memory (idle ones are forgotten first)", (*intValue)(&c.CallerTableSize)},
		{"caller-idle", "KEYSERVICE_CALLER_IDLE", "a caller's limiter unused this long is forgotten", (*durationValue)(&c.CallerIdle)},
		{"failed-rate", "KEYSERVICE_FAILED_RATE", "NOT_FOUND/MALFORMED answers per second allowed per end client (an anonymous address, or a caller's client_ip)", (*floatValue)(&c.FailedRate)},
		{"failed-burst", "KEYSERVICE_FAILED_BURST", "NOT_FOUND/MALFORMED answers allowed at once per end client", (*intValue)(&c.FailedBurst)},
		{"trusted-proxies", "KEYSERVICE_TRUSTED_PROXIES", "comma-separated CIDRs whose X-Forwarded-For is believed for REST callers", (*listValue)(&c.TrustedProxies)},
		{"key-rate", "KEYSERVICE_KEY_RATE", "default per-key limit as limit/period, for keys created without one", (*stringValue)(&c.KeyRate)},
		{"key-burst", "KEYSERVICE_KEY_BURST", "default per-key burst; 0: the limit", (*intValue)(&c.KeyBurst)},
		{"redis-url", "KEYSERVICE_REDIS_URL", "Redis for per-key budgets shared by all replicas; empty: local budgets", (*stringValue)(&c.RedisURL)},
		{"redis-timeout", "KEYSERVICE_REDIS_TIMEOUT", "past this a per-key check falls back to the local budget", (*durationValue)(&c.RedisTimeout)},
		{"auth-header", "KEYSERVICE_AUTH_HEADER", "header holding the key for forward-auth (/v1/auth) and Envoy ext_authz: Authorization (Bearer) or e.g. X-API-Key", (*stringValue)(&c.AuthHeader)},
		{"tls-cert-file", "KEYSERVICE_TLS_CERT_FILE", "serve gRPC and HTTP over TLS with this certificate (PEM)", (*stringValue)(&c.TLSCertFile)},
		{"tls-key-file", "KEYSERVICE_TLS_KEY_FILE", "private key of the TLS certificate (PEM)", (*stringValue)(&c.TLSKeyFile)},
		{"tls-client-ca-file", "KEYSERVICE_TLS_CLIENT_CA_FILE", "CA bundle for client certificates; a verified certificate identifies the caller, and Validate then needs a caller credential", (*stringValue)(&c.TLSClientCAFile)},
	}
}

// Parse fills c from args and the environment (lookup; os.LookupEnv when
// nil). Values already in c are the defaults.
func (c *Config) Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	ss := c.settings()
	for _, s := range ss {
		fs.Var(s.value, s.flag, s.usage+" (env "+s.env+")")
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
			if err := s.value.Set(v); err != nil {
				return fmt.Errorf("%s: %v", s.env, err)
			}
		}
	}
	return nil
}

// CallerTokenMap parses CallerTokens into name -> token.
func (c Config) CallerTokenMap() (map[string]string, error) {
	m := map[string]string{}
	seen := map[string]bool{}
	for _, pair := range c.CallerTokens {
		name, tok, ok := strings.Cut(pair, ":")
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		switch {
		case !ok || !validName(name):
			return nil, fmt.Errorf("entries are name:token, names of a-z A-Z 0-9 . _ -; got an entry named %q", name)
		case len(tok) < MinAdminTokenLen:
			return nil, fmt.Errorf("the token of %q is %d characters; use at least %d", name, len(tok), MinAdminTokenLen)
		case m[name] != "":
			return nil, fmt.Errorf("caller %q is listed twice", name)
		case seen[tok]:
			return nil, fmt.Errorf("two callers share one token")
		}
		m[name], seen[tok] = tok, true
	}
	return m, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// CallerOverrides parses CallerLimits ("name=rate:burst").
func (c Config) CallerOverrides() (map[string]ratelimit.Budget, error) {
	m := map[string]ratelimit.Budget{}
	for _, e := range c.CallerLimits {
		name, rb, ok1 := strings.Cut(e, "=")
		r, b, ok2 := strings.Cut(rb, ":")
		rate, err1 := strconv.ParseFloat(strings.TrimSpace(r), 64)
		burst, err2 := strconv.Atoi(strings.TrimSpace(b))
		name = strings.TrimSpace(name)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || !validName(name) || rate <= 0 || burst < 1 {
			return nil, fmt.Errorf("entries are name=rate:burst, for example billing=500:1000; got %q", e)
		}
		m[name] = ratelimit.Budget{Rate: rate, Burst: burst}
	}
	return m, nil
}

// TrustedProxyPrefixes parses TrustedProxies.
func (c Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// KeyLimit is the default per-key limit.
func (c Config) KeyLimit() (ratelimit.Limit, error) {
	n, p, ok := strings.Cut(c.KeyRate, "/")
	limit, err1 := strconv.Atoi(strings.TrimSpace(n))
	period, err2 := time.ParseDuration(strings.TrimSpace(p))
	if !ok || err1 != nil || err2 != nil {
		return ratelimit.Limit{}, fmt.Errorf("must be limit/period such as 1000/1m or 10/1s, got %q", c.KeyRate)
	}
	l := ratelimit.Limit{Limit: limit, Period: period, Burst: c.KeyBurst}
	if l.Burst == 0 {
		l.Burst = limit
	}
	if err := l.Valid(); err != nil {
		return ratelimit.Limit{}, err
	}
	return l, nil
}

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }

type listValue []string

func (v *listValue) String() string { return strings.Repeat("*", min(len(*v), 1)*8) } // never print tokens
func (v *listValue) Set(s string) error {
	*v = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*v = append(*v, part)
		}
	}
	return nil
}

type boolValue bool

func (v *boolValue) String() string { return fmt.Sprint(bool(*v)) }
func (v *boolValue) Set(s string) error {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		*v = true
	case "0", "false", "no", "off", "":
		*v = false
	default:
		return fmt.Errorf("%q is not a boolean (true or false)", s)
	}
	return nil
}
func (v *boolValue) IsBoolFlag() bool { return true }

type intValue int

func (v *intValue) String() string { return fmt.Sprint(int(*v)) }
func (v *intValue) Set(s string) error {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != strings.TrimSpace(s) {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*v = intValue(n)
	return nil
}

type floatValue float64

func (v *floatValue) String() string { return fmt.Sprint(float64(*v)) }
func (v *floatValue) Set(s string) error {
	var f float64
	if _, err := fmt.Sscanf(strings.TrimSpace(s), "%g", &f); err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	*v = floatValue(f)
	return nil
}

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (for example 250ms, 5s, 1m)", s)
	}
	*v = durationValue(d)
	return nil
}
