package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/testdb"
)

// TestReportCannotJudgeRowsMostlyRefused: a row whose calls were mostly
// refused (by the caller budget here) misses every target read from it as
// "cannot judge", naming who refused and what to change, even when its
// numbers would meet the target; its baselines count too, and the
// database's refusals stay the valid-keys target's own to judge.
func TestReportCannotJudgeRowsMostlyRefused(t *testing.T) {
	rep := &Report{Config: RunConfig{DBLatency: "0s"}, Results: []Result{
		{Scenario: "hot", Transport: "grpc", Mode: "keyservice", RPS: 1000, Requests: 100, Answered: 8, LookupsPer1k: -1,
			Refused: map[string]int{byCallerBudget: 92}},
		{Scenario: "hot", Transport: "grpc", Mode: "ceiling", RPS: 1000, Requests: 100, Answered: 100},
		{Scenario: "unknown", Transport: "grpc", Mode: "keyservice", RPS: 1000, Requests: 100, Answered: 100, LookupsPer1k: -1},
		{Scenario: "unknown", Transport: "grpc", Mode: "ceiling", RPS: 1000, Requests: 100, Answered: 50, Refused: map[string]int{"transport": 50}},
		{Scenario: "cold", Transport: "grpc", Mode: "keyservice", RPS: 1000, Requests: 100, Answered: 40, LookupsPer1k: -1,
			Refused: map[string]int{byDatabase: 60}, ValidRefused: 60},
		{Scenario: "mixed", Transport: "grpc", Mode: "keyservice", RPS: 1000, Requests: 1000, Answered: 995, LookupsPer1k: -1,
			Refused: map[string]int{byGuard: 5}},
	}}
	rep.ratios()
	rep.check()
	missed, met := strings.Join(rep.Missed, "\n"), strings.Join(rep.TargetsOK, "\n")
	for _, want := range []string{
		"cannot judge hot/grpc: 0 valid keys refused (target 0): hot/grpc/keyservice: 92% refused by the caller budget: raise KEYSERVICE_CALLER_RATE",
		"cannot judge hot/grpc: 1.00× ceiling (target ≥ 0.9)",
		"cannot judge unknown/grpc: 1.00× ceiling (target ≥ 0.9): unknown/grpc/ceiling: 50% refused by transport",
		"cold/grpc: 60 valid keys refused (target 0)",
	} {
		if !strings.Contains(missed, want) {
			t.Errorf("missed targets lack %q:\n%s", want, missed)
		}
	}
	if strings.Contains(missed, "cannot judge cold") || strings.Contains(met, "hot/") || strings.Contains(met, "unknown/") {
		t.Errorf("met:\n%s\nmissed:\n%s", met, missed)
	}
	if !strings.Contains(met, "mixed/grpc: 0 valid keys refused") {
		t.Errorf("0.5%% refused is still judged; met:\n%s", met)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "| hot | grpc | keyservice | 1000 | 0.00 | 0.00 | 0.00 | 0.00 | 92.0% |") {
		t.Errorf("markdown has no refused share:\n%s", md.String())
	}
}

// TestTargetWithCallerBudgetIsNotJudged: --target against a service whose
// caller budget is far below the load. Every refusal is counted (gRPC and
// REST alike), req/s counts only the answers, and no target is met on
// numbers that were mostly refusals: each says it cannot judge and which
// setting to raise.
func TestTargetWithCallerBudgetIsNotJudged(t *testing.T) {
	u, _ := testdb.New(t)
	scfg := config.Defaults()
	scfg.DatabaseURL = u
	scfg.GRPCAddr, scfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	scfg.AdminTokens = []string{"target-admin-token-0123456789"}
	// 100 calls a second per caller, which the load (an anonymous caller)
	// outruns; admin calls (the caller "admin") that seed the keys have room.
	scfg.CallerRate, scfg.CallerBurst = 100, 100
	scfg.CallerLimits = map[string]caller.Budget{"admin": {Rate: 1e9, Burst: 1 << 30}}
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
	cfg.Modes, cfg.Scenarios = []string{"keyservice"}, []string{"hot"}
	cfg.Log = testLogger(t)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2", len(rep.Results))
	}
	for _, r := range rep.Results {
		answered := 0
		for _, n := range r.Answers {
			answered += n
		}
		refused := r.Errors["ResourceExhausted"] + r.Errors["HTTP 429"]
		if refused == 0 || int64(answered+refused) != r.Requests {
			t.Errorf("%s: %d calls, %d answered, errors %v: want every call answered or refused by the budget", r.Transport, r.Requests, answered, r.Errors)
		}
		if got := r.RPS * r.Seconds; got < float64(answered)-1 || got > float64(answered)+1 {
			t.Errorf("%s: %.0f req/s over %.2f s is %.0f calls, want the %d answered (not the %d made)", r.Transport, r.RPS, r.Seconds, got, answered, r.Requests)
		}
	}
	missed := strings.Join(rep.Missed, "\n")
	for _, tr := range []string{"grpc", "rest"} {
		want := "cannot judge hot/" + tr + ": 0 valid keys refused (target 0): hot/" + tr + "/keyservice: "
		if i := strings.Index(missed, want); i < 0 || !strings.Contains(missed[i:], "refused by the caller budget: raise KEYSERVICE_CALLER_RATE") {
			t.Errorf("missed targets lack %q… caller budget:\n%s", want, missed)
		}
	}
	if len(rep.TargetsOK) > 0 {
		t.Errorf("targets met on refusals: %v", rep.TargetsOK)
	}
}

// TestFloodMostlyRefusedIsNotJudged: admin p99 under a flood that a budget
// refused (the failed-attempt guard of a --target, here) is not the flood
// the target is about: it is missed as "cannot judge", for the saturating
// run of --target and for the steady run alike.
func TestFloodMostlyRefusedIsNotJudged(t *testing.T) {
	refused := map[string]int{byGuard: 900}
	target := &Report{Config: RunConfig{DBLatency: "0s"}, Faults: &Faults{AdminOnly: true,
		Admin: AdminResult{P99Quiet: 1, P99Flood: 1.5, FloodCalls: 1000, Refused: refused}}}
	target.check()
	steady := &Report{Config: RunConfig{DBLatency: "0s"}, Faults: &Faults{Steady: SteadyResult{Ran: true, FloodCPU: steadyCPU,
		Admin: AdminResult{P99Quiet: 1, P99Flood: 1.5, FloodCalls: 1000, Refused: refused}}}}
	steady.check()
	for name, rep := range map[string]*Report{"--target": target, "steady": steady} {
		missed, met := strings.Join(rep.Missed, "\n"), strings.Join(rep.TargetsOK, "\n")
		if !strings.Contains(missed, "cannot judge admin p99") || !strings.Contains(missed, "90% refused by the failed-attempt guard") {
			t.Errorf("%s: missed:\n%s", name, missed)
		}
		if strings.Contains(met, "admin p99") {
			t.Errorf("%s: judged a flood that was 90%% refused; met:\n%s", name, met)
		}
	}
	// A flood that was answered is judged.
	ok := &Report{Config: RunConfig{DBLatency: "0s"}, Faults: &Faults{AdminOnly: true,
		Admin: AdminResult{P99Quiet: 1, P99Flood: 1.5, FloodCalls: 1000}}}
	ok.check()
	if !strings.Contains(strings.Join(ok.TargetsOK, "\n"), "admin p99 under an invalid-key flood") {
		t.Errorf("an answered flood was not judged: %v %v", ok.TargetsOK, ok.Missed)
	}
}
