package config

import (
	"flag"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
)

func parse(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	cfg := Defaults()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	err := cfg.Parse(fs, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return cfg, err
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	cfg, err := parse(t, []string{"--grpc-addr", ":7001", "--db-statement-timeout", "2s"}, map[string]string{
		"DATABASE_URL":            "postgres://env/db",
		"KEYSERVICE_GRPC_ADDR":    ":7000",
		"KEYSERVICE_ADMIN_TOKENS": "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb",
		"KEYSERVICE_MIGRATE":      "true",
		"KEYSERVICE_DB_MAX_CONNS": "8",
		"KEYSERVICE_LOG_LEVEL":    "debug",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != ":7001" {
		t.Errorf("flag must win over env: %q", cfg.GRPCAddr)
	}
	if cfg.DatabaseURL != "postgres://env/db" || !cfg.Migrate || cfg.DBMaxConns != 8 || cfg.LogLevel != slog.LevelDebug {
		t.Errorf("env not applied: %+v", cfg)
	}
	if len(cfg.AdminTokens) != 2 || cfg.AdminTokens[1] != "bbbbbbbbbbbbbbbb" {
		t.Errorf("tokens %q", cfg.AdminTokens)
	}
	if cfg.DBStatementTimeout != 2*time.Second || cfg.HTTPAddr != ":8080" {
		t.Errorf("flag or default lost: %+v", cfg)
	}
	if err := cfg.Check(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// Settings are parsed once, into the types their users need.
func TestSettingsAreParsedIntoTypedFields(t *testing.T) {
	t.Parallel()
	cfg, err := parse(t, nil, map[string]string{
		"KEYSERVICE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7, ::ffff:172.16.0.1, 2001:db8::/32",
		"KEYSERVICE_CALLER_TOKENS":   "billing:bbbbbbbbbbbbbbbb, search:ssssssssssssssss",
		"KEYSERVICE_CALLER_LIMITS":   "billing=500:1000",
		"KEYSERVICE_KEY_RATE":        "10/1s",
		"KEYSERVICE_KEY_BURST":       "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("172.16.0.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if len(cfg.TrustedProxies) != len(want) {
		t.Fatalf("trusted proxies %v", cfg.TrustedProxies)
	}
	for i := range want {
		if cfg.TrustedProxies[i] != want[i] {
			t.Errorf("trusted proxy %d: %v, want %v", i, cfg.TrustedProxies[i], want[i])
		}
	}
	if cfg.CallerTokens["search"] != "ssssssssssssssss" || len(cfg.CallerTokens) != 2 {
		t.Errorf("caller tokens %v", len(cfg.CallerTokens))
	}
	if cfg.CallerLimits["billing"] != (caller.Budget{Rate: 500, Burst: 1000}) {
		t.Errorf("caller limits %v", cfg.CallerLimits)
	}
	if got := cfg.KeyLimit(); got != (apikey.RateLimit{Limit: 10, Period: time.Second, Burst: 10}) {
		t.Errorf("key limit %+v", got)
	}
	// Tokens never print.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c2 := cfg
	if err := c2.Parse(fs, nil, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"admin-tokens", "caller-tokens"} {
		if v := fs.Lookup(name).Value.String(); strings.Contains(v, "bbbb") || strings.Contains(v, "ssss") {
			t.Errorf("%s prints its tokens: %q", name, v)
		}
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	tests := []struct{ env, value string }{
		{"KEYSERVICE_DB_MAX_CONNS", "many"},
		{"KEYSERVICE_MIGRATE", "perhaps"},
		{"KEYSERVICE_SHUTDOWN_TIMEOUT", "10"},
		{"KEYSERVICE_LOG_LEVEL", "loud"},
		{"KEYSERVICE_TRUSTED_PROXIES", "10.0.0.0/8,not-an-address"},
		{"KEYSERVICE_TRUSTED_PROXIES", "fe80::%eth0/64"},
		{"KEYSERVICE_CALLER_TOKENS", "billing:short"},
		{"KEYSERVICE_CALLER_TOKENS", "a:aaaaaaaaaaaaaaaa,a:bbbbbbbbbbbbbbbb"},
		{"KEYSERVICE_CALLER_TOKENS", "a:aaaaaaaaaaaaaaaa,b:aaaaaaaaaaaaaaaa"},
		{"KEYSERVICE_CALLER_TOKENS", "a:,a:aaaaaaaaaaaaaaaa"},
		{"KEYSERVICE_DB_MAX_CONNS", "0x10"},
		{"KEYSERVICE_CALLER_LIMITS", "billing=fast"},
		{"KEYSERVICE_KEY_RATE", "1000 per minute"},
		{"KEYSERVICE_IDEMPOTENCY_WINDOW", "10s"},
		{"KEYSERVICE_IDEMPOTENCY_WINDOW", "1000h"},
	}
	for _, tt := range tests {
		// Refused when read, or else by Validate.
		cfg, err := parse(t, nil, map[string]string{tt.env: tt.value})
		if err == nil {
			cfg.DatabaseURL = "postgres://x/y"
			err = cfg.Check()
		}
		if err == nil || !strings.Contains(err.Error(), tt.env) {
			t.Errorf("%s=%s: %v", tt.env, tt.value, err)
		}
		if err != nil && strings.Contains(tt.env, "TOKENS") && strings.Contains(err.Error(), "aaaaaaaaaaaaaaaa") {
			t.Errorf("%s: the error shows a token: %v", tt.env, err)
		}
	}
	bad := []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.DatabaseURL = "" }, "DATABASE_URL"},
		{func(c *Config) { c.DatabaseURL = "mysql://x" }, "DATABASE_URL"},
		{func(c *Config) { c.GRPCAddr = "9090" }, "KEYSERVICE_GRPC_ADDR"},
		{func(c *Config) { c.HTTPAddr = c.GRPCAddr }, "KEYSERVICE_HTTP_ADDR"},
		{func(c *Config) { c.AdminTokens = []string{"short"} }, "KEYSERVICE_ADMIN_TOKENS"},
		{func(c *Config) { c.KeyPrefix = "Bad_Prefix" }, "KEYSERVICE_KEY_PREFIX"},
		{func(c *Config) { c.DBMaxConns = 1 }, "KEYSERVICE_DB_MAX_CONNS"},
		{func(c *Config) { c.DBAcquireTimeout = 0 }, "KEYSERVICE_DB_ACQUIRE_TIMEOUT"},
		{func(c *Config) { c.LogFormat = "xml" }, "KEYSERVICE_LOG_FORMAT"},
		{func(c *Config) { c.CallerTokens = map[string]string{"x": "short"} }, "KEYSERVICE_CALLER_TOKENS"},
		{func(c *Config) { c.CallerLimits = map[string]caller.Budget{"x": {Rate: 0, Burst: 1}} }, "KEYSERVICE_CALLER_LIMITS"},
		{func(c *Config) { c.KeyRate = apikey.RateLimit{} }, "KEYSERVICE_KEY_RATE"},
		{func(c *Config) { c.KeyBurst = -1 }, "KEYSERVICE_KEY_BURST"},
		{func(c *Config) { c.RedisURL = "http://x" }, "KEYSERVICE_REDIS_URL"},
	}
	for _, b := range bad {
		cfg := Defaults()
		cfg.DatabaseURL = "postgres://x/y"
		b.mut(&cfg)
		if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("want an error naming %s, got %v", b.want, err)
		}
	}
}

// What operators write in environment files keeps working: surrounding
// white space (a trailing newline), yes/no/on/off, base-10 numbers.
func TestEnvironmentValuesAsOperatorsWriteThem(t *testing.T) {
	t.Parallel()
	cfg, err := parse(t, nil, map[string]string{
		"KEYSERVICE_MIGRATE":         "yes",
		"KEYSERVICE_DB_MAX_CONNS":    "16\n",
		"KEYSERVICE_CACHE_SIZE":      " 010 ",
		"KEYSERVICE_CALLER_RATE":     " 2.5 ",
		"KEYSERVICE_SYNC_INTERVAL":   "2s\n",
		"KEYSERVICE_LOG_LEVEL":       "WARN",
		"KEYSERVICE_ADMIN_TOKENS":    "aaaaaaaaaaaaaaaa\n",
		"KEYSERVICE_TRUSTED_PROXIES": "10.0.0.0/8\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Migrate || cfg.DBMaxConns != 16 || cfg.PositiveSize != 10 || cfg.CallerRate != 2.5 ||
		cfg.SyncInterval != 2*time.Second || cfg.LogLevel != slog.LevelWarn || cfg.AdminTokens[0] != "aaaaaaaaaaaaaaaa" {
		t.Fatalf("read %+v", cfg)
	}
	for _, off := range []string{"no", "off", "0", "false", ""} {
		if cfg, err := parse(t, nil, map[string]string{"KEYSERVICE_MIGRATE": off}); err != nil || cfg.Migrate {
			t.Errorf("KEYSERVICE_MIGRATE=%q: %v, %v", off, cfg.Migrate, err)
		}
	}
}

// A bad --caller-tokens flag is refused by Validate, and its tokens are
// printed nowhere (the flag package prints the value of a flag it
// refuses).
func TestBadCallerTokenFlagNeverPrintsTheToken(t *testing.T) {
	t.Parallel()
	const tok = "zzzzzzzzzzzzzzzz-secret"
	for _, arg := range []string{"billing:" + tok + ",billing:" + tok, "bad name:" + tok, "short:" + tok[:5]} {
		cfg := Defaults()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		var out strings.Builder
		fs.SetOutput(&out)
		err := cfg.Parse(fs, []string{"--caller-tokens", arg}, func(string) (string, bool) { return "", false })
		if err == nil {
			cfg.DatabaseURL = "postgres://x/y"
			err = cfg.Check()
		}
		if err == nil || !strings.Contains(err.Error(), "KEYSERVICE_CALLER_TOKENS") {
			t.Errorf("--caller-tokens %q accepted: %v", arg, err)
		}
		if strings.Contains(out.String()+err.Error(), tok[:5]) {
			t.Errorf("--caller-tokens %q: the token was printed: %q / %v", arg, out.String(), err)
		}
	}
}

// TestAdminTokensAreNamedForTheAuditTrail: name:token entries and bare
// tokens (admin-<position>); duplicate names or tokens, reserved names and
// bad names are refused without printing a token.
func TestAdminTokensAreNamedForTheAuditTrail(t *testing.T) {
	t.Parallel()
	const a, b = "aaaaaaaaaaaaaaaa-secret", "bbbbbbbbbbbbbbbb-secret"
	cfg, err := parse(t, nil, map[string]string{"KEYSERVICE_ADMIN_TOKENS": "alice:" + a + "," + b})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = "postgres://x/y"
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.AdminTokens, ",") != a+","+b || strings.Join(cfg.AdminNames, ",") != "alice,admin-2" {
		t.Fatalf("tokens %v names %v", cfg.AdminTokens, cfg.AdminNames)
	}
	for _, v := range []string{
		"alice:" + a + ",alice:" + b, // a name twice
		"alice:" + a + ",bob:" + a,   // a token twice
		"system:" + a,                // a reserved name
		"secret-scanning:" + a,       // a reserved name
		"bad name:" + a,              // not a name
		"alice:",                     // no token
		"ops/x:" + b,                 // a token with a colon, unnamed: its left part is no name
	} {
		cfg, err := parse(t, nil, map[string]string{"KEYSERVICE_ADMIN_TOKENS": v})
		if err == nil {
			cfg.DatabaseURL = "postgres://x/y"
			err = cfg.Check()
		}
		if err == nil || !strings.Contains(err.Error(), "KEYSERVICE_ADMIN_TOKENS") {
			t.Errorf("%q accepted: %v", v, err)
			continue
		}
		if strings.Contains(err.Error(), "-secret") {
			t.Errorf("%q: the error shows a token: %v", v, err)
		}
	}
}

// The debug listener is unauthenticated: only loopback hosts are taken.
func TestDebugAddrIsLoopbackOnly(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{"": true, ":6060": true, "127.0.0.1:6060": true, "[::1]:6060": true, "localhost:6060": true,
		"0.0.0.0:6060": false, "10.1.2.3:6060": false, "[::]:6060": false, "example.com:6060": false, "6060": false} {
		cfg, err := parse(t, nil, map[string]string{"DATABASE_URL": "postgres://h/db", "KEYSERVICE_DEBUG_ADDR": addr})
		if err == nil {
			err = cfg.Check()
		}
		if (err == nil) != ok {
			t.Errorf("KEYSERVICE_DEBUG_ADDR=%q: %v, want accepted %v", addr, err, ok)
		}
	}
}
