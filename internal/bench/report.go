package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Report is everything a run measured.
type Report struct {
	When      time.Time       `json:"when"`
	Command   string          `json:"command"`
	Machine   Machine         `json:"machine"`
	Config    RunConfig       `json:"config"`
	Lookups   string          `json:"lookups_source"`
	Service   string          `json:"service"`
	Results   []Result        `json:"results,omitempty"`
	Faults    *Faults         `json:"faults,omitempty"`
	Startup   *Startup        `json:"startup,omitempty"`
	Fleet     *FleetResult    `json:"fleet,omitempty"`
	Credits   []CreditsResult `json:"credits,omitempty"`
	TargetsOK []string        `json:"targets_met,omitempty"`
	Missed    []string        `json:"targets_missed,omitempty"`
}

// RunConfig is the part of Config worth recording.
type RunConfig struct {
	Keys      int    `json:"keys"`
	Duration  string `json:"duration"`
	Warmup    string `json:"warmup"`
	Conns     int    `json:"conns"`
	Workers   int    `json:"workers"`
	DBLatency string `json:"db_latency"`
}

// Run measures every scenario × transport × mode (or, with Faults, runs the
// fault scenarios) and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	var err error
	if dialTLS, err = clientTLS(cfg.TLS, cfg.CAFile); err != nil {
		return nil, err
	}
	adminToken = benchAdminToken
	if cfg.Target != "" && cfg.AdminToken != "" {
		adminToken = cfg.AdminToken
	}
	setupEnv := setup
	if cfg.Target != "" {
		setupEnv = setupTarget
	}
	e, err := setupEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep := &Report{When: time.Now().UTC(), Machine: e.machine, Command: strings.Join(os.Args, " "),
		Config: RunConfig{Keys: cfg.Keys, Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(),
			Conns: cfg.Conns, Workers: cfg.Workers, DBLatency: cfg.DBLatency.String()},
		Service: "in process (this binary); load over loopback sockets: gRPC over " +
			fmt.Sprint(cfg.Conns) + " connections, REST over one HTTP/1.1 connection per worker",
		Lookups: "pg_stat_statements (statements that read keys for Validate: GetKeysByHashes, batched; GetKeyByHash, naive)",
	}
	if !e.pgss {
		rep.Lookups = "unavailable: pg_stat_statements is not loaded on DATABASE_URL's server"
	}
	if cfg.Target != "" {
		rep.Service = "running elsewhere (--target " + cfg.Target + "), its keys made through the admin API"
		rep.Lookups = "unavailable with --target (the bench does not reach the service's database)"
	}
	if len(cfg.Startup) > 0 {
		st, err := e.runStartup(ctx, cfg.Startup)
		if err != nil {
			return nil, err
		}
		rep.Startup = st
		rep.Service = "each replica a separate process (keybench re-run as `keyservice serve`), on the bench database"
		return rep, nil
	}
	if cfg.Fleet {
		return e.fleetReport(ctx, rep)
	}
	if cfg.Faults {
		f, err := e.runFaults(ctx)
		if err != nil {
			return nil, err
		}
		rep.Faults = f
		rep.check()
		return rep, nil
	}
	// Every mode's service runs for the whole run, and each scenario is
	// measured in every mode back to back, in an order that rotates, so
	// drift on the machine (and GC of earlier runs) does not favour a mode.
	services := map[string]endpoint{}
	stops := map[string]func(){}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for _, mode := range cfg.Modes {
		if e.target != nil {
			services[mode] = e.target // --target: a service already running elsewhere
			continue
		}
		s, stop, err := e.startService(ctx, mode)
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", mode, err)
		}
		services[mode], stops[mode] = s, stop
	}
	// restart stops a mode's service (it drains and flushes its usage, as
	// on SIGTERM) and starts a new one on the same database.
	restart := func(mode string) func() (endpoint, error) {
		return func() (endpoint, error) {
			stops[mode]()
			delete(stops, mode)
			s, stop, err := e.startService(ctx, mode)
			if err != nil {
				return nil, err
			}
			services[mode], stops[mode] = s, stop
			return s, nil
		}
	}
	// The first minutes of a process run slower (heap growth, caches,
	// connection pools): warm every service up before measuring anything.
	for _, mode := range cfg.Modes {
		for _, tr := range cfg.Transports {
			if err := e.warm(ctx, services[mode], tr); err != nil {
				return nil, err
			}
		}
	}
	turn := 0
	for _, sc := range cfg.Scenarios {
		if sc == "credits" {
			if e.target != nil {
				continue // its keys' credits would be the target's to spend
			}
			ks, ok := services["keyservice"]
			if !ok {
				return nil, fmt.Errorf("the credits scenario needs the keyservice mode")
			}
			if rep.Credits, err = e.runCredits(ctx, ks); err != nil {
				return nil, err
			}
			continue
		}
		for _, tr := range cfg.Transports {
			for i := range cfg.Modes {
				mode := cfg.Modes[(i+turn)%len(cfg.Modes)]
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				r, err := e.measure(ctx, services[mode], mode, sc, tr, restart(mode))
				if err != nil {
					return nil, err
				}
				e.log.Info("measured", "mode", mode, "scenario", sc, "transport", tr,
					"rps", int(r.RPS), "refused", r.refusedShare(), "p99_ms", r.Latency.P99, "lookups_per_1k", r.LookupsPer1k)
				rep.Results = append(rep.Results, r)
			}
			turn++
		}
	}
	sortResults(rep.Results, cfg)
	rep.ratios()
	rep.check()
	return rep, nil
}

// sortResults orders results by scenario, transport, then mode, as given.
func sortResults(rs []Result, cfg Config) {
	idx := func(list []string, s string) int {
		for i, x := range list {
			if x == s {
				return i
			}
		}
		return len(list)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Scenario != b.Scenario {
			return idx(cfg.Scenarios, a.Scenario) < idx(cfg.Scenarios, b.Scenario)
		}
		if a.Transport != b.Transport {
			return idx(cfg.Transports, a.Transport) < idx(cfg.Transports, b.Transport)
		}
		return idx(cfg.Modes, a.Mode) < idx(cfg.Modes, b.Mode)
	})
}

func (rep *Report) find(mode, scenario, transport string) *Result {
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Mode == mode && r.Scenario == scenario && r.Transport == transport {
			return r
		}
	}
	return nil
}

func (rep *Report) ratios() {
	for i := range rep.Results {
		r := &rep.Results[i]
		if c := rep.find("ceiling", r.Scenario, r.Transport); c != nil && c.RPS > 0 && r.Mode != "ceiling" {
			r.VsCeiling = r.RPS / c.RPS
		}
		if n := rep.find("naive", r.Scenario, r.Transport); n != nil && n.RPS > 0 && r.Mode != "naive" {
			r.VsNaive = r.RPS / n.RPS
		}
	}
}

// check compares the results with the project's targets.
func (rep *Report) check() {
	add := func(ok bool, format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if ok {
			rep.TargetsOK = append(rep.TargetsOK, s)
		} else {
			rep.Missed = append(rep.Missed, s)
		}
	}
	// judged adds a target read from rows (the row and its baselines):
	// when any of them had too many calls refused (unjudgeable, not
	// counting the refusals the target counts itself), the target cannot
	// be judged and counts as missed, saying who refused and what to change.
	judged := func(rows []*Result, counted []string, ok bool, format string, args ...any) {
		var why []string
		for _, row := range rows {
			if w := row.unjudgeable(counted...); w != "" {
				why = append(why, w)
			}
		}
		if len(why) > 0 {
			add(false, "cannot judge %s: %s", fmt.Sprintf(format, args...), strings.Join(why, "; "))
			return
		}
		add(ok, format, args...)
	}
	checkCredits(rep.Credits, add)
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Mode != "keyservice" {
			continue
		}
		self := []*Result{r}
		switch r.Scenario {
		case "hot", "malformed", "forged", "unknown", "revoked":
			if r.VsCeiling > 0 {
				judged([]*Result{r, rep.find("ceiling", r.Scenario, r.Transport)}, nil, r.VsCeiling >= 0.9,
					"%s/%s: %.2f× ceiling (target ≥ 0.9)", r.Scenario, r.Transport, r.VsCeiling)
			}
		}
		if r.Scenario == "unknown" {
			target := 2.5
			if rep.Config.DBLatency != "0s" {
				target = 5
			}
			if r.VsNaive > 0 {
				judged([]*Result{r, rep.find("naive", r.Scenario, r.Transport)}, nil, r.VsNaive >= target,
					"unknown/%s: %.1f× naive (target ≥ %.1f× with db-latency %s)", r.Transport, r.VsNaive, target, rep.Config.DBLatency)
			}
			if r.LookupsPer1k >= 0 {
				judged(self, nil, r.LookupsPer1k <= 3, "unknown/%s: %.2f lookups per 1,000 (target ≤ 3)", r.Transport, r.LookupsPer1k)
			}
		}
		switch r.Scenario {
		case "hot", "cold", "mixed", "churn", "restart":
			// The target counts the database's refusals itself; a call
			// refused by anyone else never reached the key's judgement.
			judged(self, []string{byDatabase}, r.ValidRefused == 0, "%s/%s: %d valid keys refused (target 0)", r.Scenario, r.Transport, r.ValidRefused)
		}
		if r.Scenario == "cold" {
			// Memory mode answers first-seen keys without the database:
			// cold is as fast as hot, with no statement. Filter mode (the
			// keys do not fit the budget) waits for lookups.
			ceiling, reads, mode := 0.8, 250.0, "filter mode"
			if r.Memory {
				ceiling, reads, mode = 0.9, 0, "memory mode"
			}
			if r.VsCeiling > 0 && rep.Config.DBLatency != "0s" {
				judged([]*Result{r, rep.find("ceiling", r.Scenario, r.Transport)}, nil, r.VsCeiling >= ceiling,
					"cold/%s: %.2f× ceiling with db-latency %s, %s (target ≥ %.1f)", r.Transport, r.VsCeiling, rep.Config.DBLatency, mode, ceiling)
			}
			if r.LookupsPer1k >= 0 {
				judged(self, nil, r.LookupsPer1k <= reads, "cold/%s: %.2f key-reading statements per 1,000, %s (target ≤ %.0f)", r.Transport, r.LookupsPer1k, mode, reads)
			}
		}
		if (r.Scenario == "malformed" || r.Scenario == "forged") && r.LookupsPer1k >= 0 {
			judged(self, nil, r.LookupsPer1k == 0, "%s/%s: %.2f lookups per 1,000 (target 0)", r.Scenario, r.Transport, r.LookupsPer1k)
		}
		if r.Transport == "rest" {
			if g := rep.find("keyservice", r.Scenario, "grpc"); g != nil && g.RPS > 0 {
				judged([]*Result{r, g}, nil, r.RPS/g.RPS >= 0.8, "%s: REST %.2f× gRPC (target ≥ 0.8)", r.Scenario, r.RPS/g.RPS)
			}
		}
	}
	if f := rep.Fleet; f != nil {
		f.targets(add)
	}
	if f := rep.Faults; f != nil {
		// A flood that saturates two shared cores slows everything on them;
		// the targets are judged where a deployment runs, with headroom: a
		// steady flood that keeps the machine about 70% busy. The
		// saturating runs are reported, not judged.
		if f.AdminOnly {
			if why := tooRefused("the flood", f.Admin.Refused, f.Admin.FloodCalls); why != "" {
				add(false, "cannot judge admin p99 under an invalid-key flood: %s", why)
			} else if f.Admin.P99Quiet > 0 {
				add(f.Admin.P99Flood <= 3*f.Admin.P99Quiet, "admin p99 under an invalid-key flood at full speed (--target: no steady run): %.2f ms vs %.2f ms quiet (%.2f×, target ≤ 3×)",
					f.Admin.P99Flood, f.Admin.P99Quiet, f.Admin.P99Flood/f.Admin.P99Quiet)
			}
			return
		}
		switch s := f.Steady; {
		case !s.Ran || s.Admin.P99Quiet == 0:
			add(false, "admin p99 and propagation during a steady invalid-key flood: not measured (%s)", s.Note)
		case tooRefused("the flood", s.Admin.Refused, s.Admin.FloodCalls) != "":
			add(false, "cannot judge admin p99 and propagation during a steady invalid-key flood: %s", tooRefused("the flood", s.Admin.Refused, s.Admin.FloodCalls))
		case s.FloodCPU < steadyCPU-10 || s.FloodCPU > steadyCPU+10:
			add(false, "admin p99 and propagation during a steady invalid-key flood: cannot judge, no rate kept the machine about %d%% busy (%.0f%% at the last; other load on it?)", steadyCPU, s.FloodCPU)
		default:
			a := s.Admin
			add(a.P99Flood <= 3*a.P99Quiet, "admin p99 during a steady invalid-key flood (the flood alone %.0f%% of the machine): %.2f ms vs %.2f ms quiet (%.2f×, target ≤ 3×)",
				s.FloodCPU, a.P99Flood, a.P99Quiet, a.P99Flood/a.P99Quiet)
			p := s.Propagation
			worst := max(p.CreateMS.P99, p.UpdateMS.P99, p.DisableMS.P99, p.RotateMS.P99, p.RevokeMS.P99)
			add(worst < 100, "propagation during a steady invalid-key flood: worst p99 %.2f ms (target < 100)", worst)
		}
		if c := f.AdminCold; c.P99Quiet > 0 {
			add(c.ValidRefused == 0, "cold burst during admin calls: %d valid keys refused (target 0)", c.ValidRefused)
		}
		if f.Slots.Ran {
			add(f.Slots.Refused == 0 && f.Slots.Valid == int64(f.Slots.Keys), "server out of connection slots: %d of %d first-seen valid keys refused (target 0)", f.Slots.Refused, f.Slots.Keys)
		}
		if f.Propagation.Trials > 0 {
			add(f.Propagation.CreateMS.P99 < 100, "create→visible on another replica p99 %.2f ms (target < 100)", f.Propagation.CreateMS.P99)
			add(f.Propagation.RevokeMS.P99 < 100, "revoke→refused on another replica p99 %.2f ms (target < 100)", f.Propagation.RevokeMS.P99)
			add(f.Propagation.UpdateMS.P99 < 100, "update→new scopes on another replica p99 %.2f ms (target < 100)", f.Propagation.UpdateMS.P99)
			add(f.Propagation.DisableMS.P99 < 100, "disable→DISABLED on another replica p99 %.2f ms (target < 100)", f.Propagation.DisableMS.P99)
			add(f.Propagation.RotateMS.P99 < 100, "rotate→old key EXPIRED on another replica p99 %.2f ms (target < 100)", f.Propagation.RotateMS.P99)
			if pl := f.PropagationLoaded; pl.Trials > 0 {
				add(pl.RevokeMS.P99 < 100, "revoke→refused on another replica under load p99 %.2f ms, max %.2f ms (target p99 < 100)", pl.RevokeMS.P99, pl.RevokeMS.Max)
				worst := max(pl.UpdateMS.P99, pl.DisableMS.P99, pl.RotateMS.P99)
				add(worst < 100, "update, disable and rotate on another replica under load: worst p99 %.2f ms (target < 100)", worst)
			}
		}
		f.CredentialRevocation.judge(add)
		f.ClientCache.judge(add)
		if f.Outage.Ran {
			add(f.Outage.UnknownValid == 0, "Postgres outage: %d unknown keys answered VALID (target 0)", f.Outage.UnknownValid)
		}
	}
}

// WriteJSON writes the report as JSON.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func fmtCodes(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(k, "CODE_"), m[k]))
	}
	return strings.Join(parts, ", ")
}

func ratio(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", f)
}

// WriteMarkdown writes the report as Markdown tables.
func (rep *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Run %s on %d cores, %d GB, %s, %s, PostgreSQL %s.\n\n", rep.When.Format(time.RFC3339),
		rep.Machine.Cores, rep.Machine.MemoryGB, rep.Machine.CPU, rep.Machine.Go, rep.Machine.Postgres)
	fmt.Fprintf(w, "Keys %d; %s per run after %s warm-up; %d workers; db-latency %s. Service: %s. Lookups: %s.\n\n",
		rep.Config.Keys, rep.Config.Duration, rep.Config.Warmup, rep.Config.Workers, rep.Config.DBLatency, rep.Service, rep.Lookups)
	if len(rep.Results) > 0 {
		fmt.Fprintln(w, "Answered calls only in req/s and the latencies; refused is the share of calls that got an error instead (errors: by status).")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| scenario | transport | mode | req/s | p50 ms | p90 ms | p99 ms | max ms | refused | errors | valid keys refused | answers | lookups/1k | pool waits | × ceiling | × naive |")
		fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|")
		for _, r := range rep.Results {
			lk := "n/a"
			if r.LookupsPer1k >= 0 {
				lk = fmt.Sprintf("%.2f", r.LookupsPer1k)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %d | %s | %s | %.0f | %s | %s |\n",
				r.Scenario, r.Transport, r.Mode, r.RPS, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max,
				r.refusedShare(), fmtCodes(r.Errors), r.ValidRefused, fmtCodes(r.Answers), lk, r.PoolWaits, ratio(r.VsCeiling), ratio(r.VsNaive))
		}
		fmt.Fprintln(w)
	}
	if f := rep.Faults; f != nil {
		f.writeMarkdown(w)
	}
	if f := rep.Fleet; f != nil {
		f.writeMarkdown(w)
	}
	if st := rep.Startup; st != nil {
		st.writeMarkdown(w)
		fmt.Fprintln(w)
	}
	if len(rep.Credits) > 0 {
		writeCreditsMarkdown(w, rep.Credits)
	}
	if len(rep.TargetsOK)+len(rep.Missed) > 0 {
		fmt.Fprintln(w, "Targets:")
		fmt.Fprintln(w)
		for _, s := range rep.TargetsOK {
			fmt.Fprintf(w, "- met: %s\n", s)
		}
		for _, s := range rep.Missed {
			fmt.Fprintf(w, "- **missed**: %s\n", s)
		}
		fmt.Fprintln(w)
	}
}
