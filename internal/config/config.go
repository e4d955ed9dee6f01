// Package config owns the service's settings: the Config struct and the
// declaration of each setting (settings.go), from which its flag and
// environment variable, its default, Validate, --help and the table in
// docs/configuration.md are all made. Every value is parsed once, when it
// is read, into the type its user needs (prefixes, budgets, limits,
// durations, a log level), so nothing downstream parses a setting again or
// can drop a parse error.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/connlimit"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/limits"
	"github.com/keyservice/keyservice/internal/perm"
	"github.com/keyservice/keyservice/internal/validate"
)

// Config is every setting of the service, each declared once in
// settings.go with its flag, environment variable, default, rule and help.
// A flag given on the command line wins over the variable, which wins over
// the default. The packages that use a group of settings own its type
// (validate.Tuning, limits.Limits, connlimit.Caps), and receive it whole.
type Config struct {
	DatabaseURL string
	// DatabaseReadURL (KEYSERVICE_DATABASE_READ_URL): read replicas for the
	// validation path's reads; "": the primary.
	DatabaseReadURL string
	GRPCAddr        string
	HTTPAddr        string
	DebugAddr       string // pprof and runtime metrics, loopback only; "": off
	// AdminTokens and AdminNames (KEYSERVICE_ADMIN_TOKENS, name:token or a
	// bare token) are parallel: AdminNames[i] names AdminTokens[i] in the
	// audit trail; a bare token is admin-<its position>.
	AdminTokens []string
	AdminNames  []string
	// AdminPermissions narrows named admin tokens to these permissions
	// (KEYSERVICE_ADMIN_PERMISSIONS); unnamed ones hold every permission.
	AdminPermissions map[string]perm.Set
	// SealKey (KEYSERVICE_SEAL_KEY) is what the keys sealing recorded
	// answers and signing page tokens are derived from; "" : from the admin
	// tokens.
	SealKey string
	// RequireCaller (KEYSERVICE_REQUIRE_CALLER): Validate needs a credential
	// or a client certificate even without caller tokens or a client CA.
	RequireCaller bool
	// ClientCache (KEYSERVICE_CLIENT_CACHE): Validate says which answers a
	// caller following WatchKeyEvents may keep.
	ClientCache bool
	// Console (KEYSERVICE_CONSOLE): /console on the HTTP port.
	Console   bool
	KeyPrefix string
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
	ConnIdle           time.Duration // an idle connection is closed after this
	RequestReadTimeout time.Duration // a call on the gRPC port whose request has not arrived this long after its headers is cancelled
	LogLevel           slog.Level
	LogFormat          string

	// The connection caps of each listener (0: derived from the open file
	// limit), given whole to connlimit.
	connlimit.Caps

	// The fast path's settings, given whole to validate.New.
	validate.Tuning

	// The rate limits' settings (internal/limits), given whole to
	// ratelimit.NewCallers and ratelimit.NewKeyBudgets.
	limits.Limits

	// Callers (middleware.NewAuth) and the proxies believed when they name
	// end clients (ratelimit, gateway, service).
	CallerTokens   map[string]string // caller name -> token
	TrustedProxies []netip.Prefix

	// Credits (internal/credits): the largest lease of credits a replica
	// takes at once, and how long an unused lease is kept.
	CreditLease      int
	CreditIdleReturn time.Duration
	// The usage history's retention (internal/usage) of minutes, hours
	// and days.
	UsageMinuteRetention time.Duration
	UsageHourRetention   time.Duration
	UsageDayRetention    time.Duration

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

	// callerTokensErr, signingKeysErr, adminTokensErr: what was wrong with
	// the secret settings as read (reported by Validate, which never shows
	// a secret).
	callerTokensErr error
	signingKeysErr  error
	adminTokensErr  error
}

// MinTokenLen is the shortest admin or caller token accepted.
const MinTokenLen = 16

// checkAdminTokens: the problem found when they were read, else each
// token long enough and free of white space. Messages name tokens by
// position only.
func (c *Config) checkAdminTokens() error {
	if c.adminTokensErr != nil {
		return c.adminTokensErr
	}
	var errs []error
	for i, tok := range c.AdminTokens {
		if len(tok) < MinTokenLen {
			errs = append(errs, fmt.Errorf("token %d is %d characters; use at least %d random characters", i+1, len(tok), MinTokenLen))
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			errs = append(errs, fmt.Errorf("token %d contains white space", i+1))
		}
	}
	return errors.Join(errs...)
}

func checkCallerLimits(m map[string]caller.Budget) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if b := m[name]; !validName(name) || b.Rate <= 0 || b.Burst < 1 {
			errs = append(errs, fmt.Errorf("entries are name=rate:burst with a positive rate and burst, for example billing=500:1000; got %s=%g:%d", name, b.Rate, b.Burst))
		}
	}
	return errors.Join(errs...)
}

func checkPrefixes(ps []netip.Prefix) error {
	var errs []error
	for _, p := range ps {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("%v is not a CIDR", p))
		}
	}
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
