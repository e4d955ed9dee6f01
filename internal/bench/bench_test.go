package bench

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/cli"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) {
	if os.Getenv(ChildEnv) == "serve" { // this binary, re-run as a replica (the fleet scenario)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, []string{"serve"}, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	testdb.Main(m)
}

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("p%.1f = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("one sample: %s", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("no samples: %s", got)
	}
	l := summarise([]time.Duration{5, 1, 4, 2, 3})
	if l.P50 != 3 || l.Max != 5 || l.P99 != 5 {
		t.Errorf("summarise unsorted input: %+v", l)
	}
}

func TestKeyGenerators(t *testing.T) {
	f, _ := keys.NewFormat("ks")
	for i, k := range malformedKeys(f, 3000, rand.New(rand.NewPCG(1, 2))) {
		if f.Parse(k) == nil {
			t.Fatalf("malformed key %d %q parses", i, k)
		}
		if strings.ContainsAny(k, `"\`) {
			t.Fatalf("malformed key %d %q is not JSON-safe", i, k)
		}
	}
	seen := map[string]bool{}
	for _, k := range unknownKeys(f, 3000) {
		if err := f.Parse(k); err != nil {
			t.Fatalf("unknown key %q is not well formed: %v", k, err)
		}
		if seen[k] {
			t.Fatal("unknown keys repeat")
		}
		seen[k] = true
	}
}

func TestCodeOf(t *testing.T) {
	if c, err := codeOf([]byte(`{"valid":true,"code":"CODE_VALID","key":{"name":"x"}}`)); err != nil || c != "CODE_VALID" {
		t.Fatalf("%q %v", c, err)
	}
	if _, err := codeOf([]byte(`{"code":3,"message":"x"}`)); err == nil {
		t.Fatal("an error status must not look like an answer")
	}
}

func TestReportRatiosTargetsAndOutputs(t *testing.T) {
	rep := &Report{Config: RunConfig{DBLatency: "0s"}, Results: []Result{
		{Scenario: "unknown", Transport: "grpc", Mode: "keyservice", RPS: 900, LookupsPer1k: 0.5, Answers: map[string]int{"CODE_NOT_FOUND": 9}},
		{Scenario: "unknown", Transport: "grpc", Mode: "ceiling", RPS: 1000},
		{Scenario: "unknown", Transport: "grpc", Mode: "naive", RPS: 300, LookupsPer1k: 1000},
		{Scenario: "unknown", Transport: "rest", Mode: "keyservice", RPS: 500, LookupsPer1k: 4},
		{Scenario: "cold", Transport: "grpc", Mode: "keyservice", RPS: 800, LookupsPer1k: 40, ValidRefused: 3},
	}}
	rep.ratios()
	rep.check()
	k := rep.find("keyservice", "unknown", "grpc")
	if k.VsCeiling != 0.9 || k.VsNaive != 3 {
		t.Fatalf("ratios %+v", k)
	}
	joined := strings.Join(rep.Missed, "\n")
	if !strings.Contains(joined, "unknown/rest: 4.00 lookups") || !strings.Contains(joined, "REST 0.56× gRPC") ||
		!strings.Contains(joined, "cold/grpc: 3 valid keys refused") {
		t.Fatalf("missed targets not reported:\n%s", joined)
	}
	if !strings.Contains(strings.Join(rep.TargetsOK, "\n"), "unknown/grpc: 3.0× naive") {
		t.Fatalf("met targets: %v", rep.TargetsOK)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "| unknown | grpc | keyservice | 900 |") || !strings.Contains(md.String(), "NOT_FOUND 9") ||
		!strings.Contains(md.String(), "| - | 3 |") {
		t.Fatalf("markdown:\n%s", md.String())
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg); err != nil || !strings.HasPrefix(svg.String(), "<svg") || strings.Count(svg.String(), "<rect") < 5 {
		t.Fatalf("svg: %v\n%s", err, svg.String())
	}
}

// TestSmokeEveryScenario runs every scenario for a second over both
// transports against a real server and database, so the tool never rots.
func TestSmokeEveryScenario(t *testing.T) {
	cfg := Defaults()
	cfg.DatabaseURL = testdb.ServerURL(t)
	cfg.Keys, cfg.Duration, cfg.Warmup, cfg.Workers, cfg.Conns = 2000, time.Second, 0, 8, 2
	cfg.Modes = []string{"keyservice"}
	cfg.Log = testLogger(t)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// credits is its own step (rep.Credits), not a row per mode.
	if len(rep.Results) != (len(AllScenarios)-1)*2 {
		t.Fatalf("%d results, want %d", len(rep.Results), (len(AllScenarios)-1)*2)
	}
	if len(rep.Credits) != 2 {
		t.Fatalf("credits step: %d results, want one per transport", len(rep.Credits))
	}
	for _, c := range rep.Credits {
		// A second under the race detector may not spend every credit;
		// never more than granted.
		if c.RPSWith <= 0 || c.RPSWithout <= 0 || c.Overspent || c.NearValid == 0 || c.NearValid > int64(c.NearKeys*c.NearEach) {
			t.Errorf("credits/%s: %+v", c.Transport, c)
		}
	}
	want := map[string]string{"hot": "CODE_VALID", "cold": "CODE_VALID", "malformed": "CODE_MALFORMED", "forged": "CODE_MALFORMED",
		"unknown": "CODE_NOT_FOUND", "revoked": "CODE_REVOKED", "mixed": "CODE_VALID", "churn": "CODE_VALID", "restart": "CODE_VALID"}
	for _, r := range rep.Results {
		if r.Requests == 0 || r.Answers[want[r.Scenario]] == 0 || len(r.Errors) > 0 || r.ValidRefused != 0 {
			t.Errorf("%s/%s: %d requests, answers %v, errors %v, %d valid keys refused", r.Scenario, r.Transport, r.Requests, r.Answers, r.Errors, r.ValidRefused)
		}
		if (r.Scenario == "malformed" || r.Scenario == "forged") && r.LookupsPer1k > 0 {
			t.Errorf("%s keys made %.2f lookups per 1,000", r.Scenario, r.LookupsPer1k)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestTargetRunsAgainstAServiceElsewhere: --target benches a service this
// process did not start, seeding its keys through the admin API, and runs
// the admin-under-flood fault against it.
func TestTargetRunsAgainstAServiceElsewhere(t *testing.T) {
	u, _ := testdb.New(t)
	scfg := config.Defaults()
	scfg.DatabaseURL = u
	scfg.GRPCAddr, scfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	scfg.AdminTokens = []string{"target-admin-token-0123456789"}
	scfg.CallerRate, scfg.CallerBurst, scfg.FailedRate, scfg.FailedBurst = 1e9, 1<<30, 1e9, 1<<30
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := server.New(ctx, scfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-s.Ready()

	cfg := Defaults()
	cfg.Target = "grpc=" + s.GRPCAddr().String() + ",http=" + s.HTTPAddr().String()
	cfg.AdminToken = "target-admin-token-0123456789"
	cfg.Keys, cfg.Duration, cfg.Warmup, cfg.Workers, cfg.Conns = 2000, time.Second, 0, 8, 2
	cfg.Modes, cfg.Scenarios = []string{"keyservice"}, []string{"hot", "unknown", "revoked"}
	cfg.Log = testLogger(t)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"hot": "CODE_VALID", "unknown": "CODE_NOT_FOUND", "revoked": "CODE_REVOKED"}
	if len(rep.Results) != 6 {
		t.Fatalf("%d results, want 6", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Answers[want[r.Scenario]] == 0 || len(r.Errors) > 0 || r.ValidRefused != 0 || r.LookupsPer1k != -1 {
			t.Errorf("%s/%s: answers %v, errors %v, %d refused, lookups %v", r.Scenario, r.Transport, r.Answers, r.Errors, r.ValidRefused, r.LookupsPer1k)
		}
	}
	cfg.Faults = true
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Faults; f == nil || !f.AdminOnly || f.Admin.CallsQuiet == 0 || f.Admin.CallsFlood == 0 || f.Admin.FloodRPS == 0 {
		t.Fatalf("admin under flood against the target: %+v", rep.Faults)
	}
	// A wrong admin token is a clear error, not a silent run.
	cfg.Faults, cfg.AdminToken = false, "wrong-admin-token-0123456789"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("wrong admin token: %v", err)
	}
}

// TestFleetRollingRestart runs the fleet scenario small: three replicas
// (this binary, re-run as keyservice serve) behind a real nginx, with a
// private Redis, restarted one by one under load through nginx. Nothing
// refused, no error at the balancer, the per-key limit exact.
func TestFleetRollingRestart(t *testing.T) {
	for _, tool := range []string{"nginx", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, serr := os.Stat("/usr/sbin/" + tool); serr == nil {
				continue
			}
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (.ci/run installs it)", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
	cfg := Defaults()
	cfg.DatabaseURL = testdb.ServerURL(t)
	cfg.Keys, cfg.Fleet = 2000, true
	cfg.Log = testLogger(t)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Fleet
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	t.Log(md.String())
	if f == nil || len(f.Restarts) != fleetReplicas || f.Calls["grpc"] == 0 || f.Calls["rest"] == 0 {
		t.Fatalf("the scenario did not run whole: %+v", f)
	}
	if f.ValidRefused != 0 || f.BalancerErrors != 0 {
		t.Errorf("%d valid keys refused, %d errors at the balancer (%v)", f.ValidRefused, f.BalancerErrors, f.Errors)
	}
	if f.Limit.Valid != f.Limit.Limit || f.Limit.Asked <= f.Limit.Limit {
		t.Errorf("per-key limit %d: %d VALID of %d asked", f.Limit.Limit, f.Limit.Valid, f.Limit.Asked)
	}
}
