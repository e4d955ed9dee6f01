// Package config owns the service's settings: the Config struct, its
// defaults, its flags and environment variables, and Check. Every value
// is parsed once, when it is read, into the type its user needs (prefixes,
// budgets, limits, durations, a log level), so nothing downstream parses a
// setting again or can drop a parse error.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/validate"
)

// Config is every setting of the service. Each has a flag and an
// environment variable; a flag given on the command line wins over the
// variable, which wins over the default.
type Config struct {
	DatabaseURL string
	GRPCAddr    string
	HTTPAddr    string
	// AdminTokens and AdminNames (KEYSERVICE_ADMIN_TOKENS, name:token or a
	// bare token) are parallel: AdminNames[i] names AdminTokens[i] in the
	// audit trail; a bare token is admin-<its position>.
	AdminTokens []string
	AdminNames  []string
	KeyPrefix   string
	// The signed key format (internal/keys/signed.go): its prefix, and the
	// signing secrets, the first of which signs new keys. None: off.
	SignedKeyPrefix  string
	SigningKeys      []keys.SigningKey
	DefaultKeyFormat string // "checksum" or "signed"
	// Legacy formats of imported keys (internal/keys/legacy.go), and the
	// names of those turned off.
	LegacyFormats      []keys.Legacy
	LegacyRefuse       []string
	Migrate            bool
	DBMaxConns         int
	DBConnectTimeout   time.Duration
	DBAcquireTimeout   time.Duration
	DBStatementTimeout time.Duration
	ReadyInterval      time.Duration
	ShutdownTimeout    time.Duration
	// ShutdownDelay: after SIGTERM the service reports not ready but keeps
	// serving this long before it drains, so load balancers (Kubernetes
	// endpoints) stop sending it calls first. 0: drain at once.
	ShutdownDelay      time.Duration
	MaxRequestBytes    int
	MaxHeaderBytes     int           // largest header list of a call, as HTTP/2 counts it (gateway.HeaderListSize, middleware.MetadataSize)
	MaxStreams         int           // concurrent gRPC streams per connection
	MaxConns           int           // connections per listener; 0: derived from the open file limit
	MaxConnsPerAddr    int           // connections per client address (IPv6: /64) per listener; 0: derived
	ConnIdle           time.Duration // an idle connection is closed after this
	RequestReadTimeout time.Duration // a call on the gRPC port whose request has not arrived this long after its headers is cancelled
	LogLevel           slog.Level
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
	FilterSnapshots    bool // load the fleet's filter snapshot instead of reading the table (see internal/validate/snapshot.go)

	// Limits (see internal/ratelimit).
	CallerTokens    map[string]string // caller name -> token
	CallerRate      float64
	CallerBurst     int
	CallerLimits    map[string]caller.Budget // per-caller overrides
	CallerTableSize int
	CallerIdle      time.Duration
	FailedRate      float64
	FailedBurst     int
	TrustedProxies  []netip.Prefix
	KeyRate         apikey.RateLimit // default per-key limit (its Burst is KeyBurst)
	KeyBurst        int              // 0: the limit
	RedisURL        string
	RedisTimeout    time.Duration

	// ScanningKeysFile holds GitHub's secret scanning public keys (their
	// JSON shape); set, POST /v1/secret-scanning/reports takes reports.
	ScanningKeysFile string
	// ScanningAction is what a report of a live key does: "revoke" it, or
	// "flag" it (record the report only).
	ScanningAction string

	// IdempotencyWindow: how long the answer of an admin write made with a
	// request_id is kept (sealed) and given again to a retry.
	IdempotencyWindow time.Duration

	// AuthHeader is where forward-auth and Envoy ext_authz find the key:
	// "Authorization" (Bearer) or a header such as "X-API-Key".
	AuthHeader string

	// TLS; with a client CA, client certificates identify callers.
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string

	// callerTokensErr, signingKeysErr: what was wrong with
	// KEYSERVICE_CALLER_TOKENS or KEYSERVICE_SIGNING_KEYS as read (reported
	// by Check, which never shows a secret).
	callerTokensErr error
	signingKeysErr  error
	adminTokensErr  error
}

// Defaults returns the default configuration. The fast path's tuning
// comes from validate.Defaults, so the two cannot drift apart.
func Defaults() Config {
	v := validate.Defaults()
	return Config{
		GRPCAddr:           ":9090",
		HTTPAddr:           ":8080",
		KeyPrefix:          keys.DefaultPrefix,
		SignedKeyPrefix:    "kss",
		DefaultKeyFormat:   "checksum",
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
		IdempotencyWindow:  24 * time.Hour,
		LogLevel:           slog.LevelInfo,
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
		FilterSnapshots:    !v.NoSnapshots,
		CallerRate:         1000,
		CallerBurst:        2000,
		CallerTableSize:    100_000,
		CallerIdle:         10 * time.Minute,
		FailedRate:         10,
		FailedBurst:        100,
		KeyRate:            apikey.RateLimit{Limit: 1000, Period: time.Minute},
		RedisTimeout:       50 * time.Millisecond,
		AuthHeader:         "Authorization",
		ScanningAction:     "revoke",
	}
}

// MinTokenLen is the shortest admin or caller token accepted.
const MinTokenLen = 16

// KeyLimit is the default per-key limit: KeyRate with KeyBurst (the limit
// when KeyBurst is 0).
func (c Config) KeyLimit() apikey.RateLimit {
	l := c.KeyRate
	l.Burst = c.KeyBurst
	if l.Burst == 0 {
		l.Burst = l.Limit
	}
	return l
}

// Check explains every bad setting, naming its variable (nil: none).
func (c Config) Check() error {
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
	if c.adminTokensErr != nil {
		bad("KEYSERVICE_ADMIN_TOKENS", "%v", c.adminTokensErr)
	}
	for i, tok := range c.AdminTokens {
		if len(tok) < MinTokenLen {
			bad("KEYSERVICE_ADMIN_TOKENS", "token %d is %d characters; use at least %d random characters", i+1, len(tok), MinTokenLen)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			bad("KEYSERVICE_ADMIN_TOKENS", "token %d contains white space", i+1)
		}
	}
	if err := keys.ValidatePrefix(c.KeyPrefix); err != nil {
		bad("KEYSERVICE_KEY_PREFIX", "%v", err)
	} else if _, err := c.KeyFormat(); err != nil {
		var se *settingError
		if errors.As(err, &se) {
			bad(se.env, "%v", se.err)
		} else {
			bad("KEYSERVICE_KEY_PREFIX", "%v", err)
		}
	}
	switch c.DefaultKeyFormat {
	case "checksum":
	case "signed":
		if len(c.SigningKeys) == 0 {
			bad("KEYSERVICE_DEFAULT_KEY_FORMAT", "signed needs KEYSERVICE_SIGNING_KEYS")
		}
	default:
		bad("KEYSERVICE_DEFAULT_KEY_FORMAT", "must be checksum or signed, got %q", c.DefaultKeyFormat)
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
	if c.IdempotencyWindow < time.Minute || c.IdempotencyWindow > 30*24*time.Hour {
		bad("KEYSERVICE_IDEMPOTENCY_WINDOW", "must be between 1m and 720h (30 days), got %s", c.IdempotencyWindow)
	}
	if c.ShutdownDelay < 0 {
		bad("KEYSERVICE_SHUTDOWN_DELAY", "must be 0 or a positive duration, got %s", c.ShutdownDelay)
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
	if c.callerTokensErr != nil {
		bad("KEYSERVICE_CALLER_TOKENS", "%v", c.callerTokensErr)
	} else if err := checkCallerTokens(c.CallerTokens); err != nil {
		bad("KEYSERVICE_CALLER_TOKENS", "%v", err)
	}
	for name, b := range c.CallerLimits {
		if !validName(name) || b.Rate <= 0 || b.Burst < 1 {
			bad("KEYSERVICE_CALLER_LIMITS", "entries are name=rate:burst with a positive rate and burst, for example billing=500:1000; got %s=%g:%d", name, b.Rate, b.Burst)
		}
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
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			bad("KEYSERVICE_TRUSTED_PROXIES", "%v is not a CIDR", p)
		}
	}
	if c.KeyBurst < 0 {
		bad("KEYSERVICE_KEY_BURST", "must be 0 (the limit) or more, got %d", c.KeyBurst)
	} else if err := c.KeyLimit().Valid(); err != nil {
		bad("KEYSERVICE_KEY_RATE", "%v", err)
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			bad("KEYSERVICE_REDIS_URL", "must be a redis:// URL such as redis://127.0.0.1:6379/0")
		}
	}
	if c.ScanningAction != "revoke" && c.ScanningAction != "flag" {
		bad("KEYSERVICE_SCANNING_ACTION", "must be revoke or flag, got %q", c.ScanningAction)
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
	for env, n := range map[string]int{"KEYSERVICE_MAX_CONNS": c.MaxConns, "KEYSERVICE_MAX_CONNS_PER_ADDR": c.MaxConnsPerAddr} {
		if n < 0 {
			bad(env, "must be 0 (derived from the open file limit) or more, got %d", n)
		}
	}
	if c.MaxRequestBytes < 1024 {
		bad("KEYSERVICE_MAX_REQUEST_BYTES", "must be at least 1024, got %d", c.MaxRequestBytes)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("KEYSERVICE_LOG_FORMAT", "must be json or text, got %q", c.LogFormat)
	}
	// Sort for a stable message: map iteration above is random.
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// settingError is a problem with one setting.
type settingError struct {
	env string
	err error
}

func (e *settingError) Error() string { return e.env + ": " + e.err.Error() }

// KeyFormat is the key format the service issues and accepts: the
// checksum format, and the signed and legacy formats when configured.
func (c Config) KeyFormat() (keys.Format, error) {
	f, err := keys.NewFormat(c.KeyPrefix)
	if err != nil {
		return f, &settingError{"KEYSERVICE_KEY_PREFIX", err}
	}
	if c.signingKeysErr != nil {
		return f, &settingError{"KEYSERVICE_SIGNING_KEYS", c.signingKeysErr}
	}
	if len(c.SigningKeys) > 0 {
		if f, err = f.WithSigned(c.SignedKeyPrefix, c.SigningKeys); err != nil {
			return f, &settingError{"KEYSERVICE_SIGNED_KEY_PREFIX", err}
		}
	}
	legacy := append([]keys.Legacy(nil), c.LegacyFormats...)
	for _, r := range c.LegacyRefuse {
		found := false
		for i := range legacy {
			if legacy[i].Name == r {
				legacy[i].Refuse, found = true, true
			}
		}
		if !found {
			return f, &settingError{"KEYSERVICE_LEGACY_REFUSE", fmt.Errorf("%q is not a legacy format", r)}
		}
	}
	if f, err = f.WithLegacy(legacy); err != nil {
		return f, &settingError{"KEYSERVICE_LEGACY_FORMATS", err}
	}
	return f, nil
}

// checkCallerTokens: names of the caller alphabet, tokens long enough, no
// token shared by two callers.
func checkCallerTokens(m map[string]string) error {
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		tok := m[name]
		switch {
		case !validName(name):
			return fmt.Errorf("entries are name:token, names of a-z A-Z 0-9 . _ -; got an entry named %q", name)
		case len(tok) < MinTokenLen:
			return fmt.Errorf("the token of %q is %d characters; use at least %d", name, len(tok), MinTokenLen)
		case seen[tok]:
			return errors.New("two callers share one token")
		}
		seen[tok] = true
	}
	return nil
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

// Logger builds the service logger from the config.
func (c Config) Logger(w *os.File) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
