package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
)

// Main parses flags, runs the bench and writes the reports; it returns
// the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := Defaults()
	fs := flag.NewFlagSet("keybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL server to create a bench database on (default: a throwaway cluster with pg_stat_statements)")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "keys to seed (2,000 to 10,000,000)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per scenario, transport and mode")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load before each measurement")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "gRPC connections (REST uses one HTTP/1.1 connection per worker)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent callers")
	scenarios := fs.String("scenarios", strings.Join(AllScenarios, ","), "scenarios to run")
	transports := fs.String("transports", strings.Join(AllTransports, ","), "transports: grpc, rest")
	modes := fs.String("modes", strings.Join(AllModes, ","), "keyservice, ceiling (a handler that answers at once), naive (every Validate a pooled query)")
	fs.DurationVar(&cfg.DBLatency, "db-latency", 0, "delay added each way between the service and Postgres (a TCP proxy), e.g. 0.5ms")
	fs.BoolVar(&cfg.Faults, "faults", false, "run the fault scenarios instead (outage, LISTEN killed, propagation, admin under flood)")
	fs.BoolVar(&cfg.Fleet, "fleet", false, "run the fleet scenario instead: a rolling restart of 3 replicas (processes) behind nginx, with Redis, under load through nginx")
	fs.IntVar(&cfg.Trials, "trials", cfg.Trials, "propagation and credential revocation trials (faults)")
	fs.StringVar(&cfg.Target, "target", "", "bench a service already running elsewhere: grpc=HOST:PORT,http=HOST:PORT (keys made through its admin API; mode keyservice only)")
	fs.StringVar(&cfg.AdminToken, "admin-token", os.Getenv("KEYSERVICE_ADMIN_TOKEN"), "admin token of the --target service (default $KEYSERVICE_ADMIN_TOKEN; prefer the variable: flags show in ps)")
	fs.BoolVar(&cfg.TLS, "tls", false, "connect to --target over TLS")
	fs.StringVar(&cfg.CAFile, "ca-file", "", "CA bundle to verify --target (implies --tls)")
	startup := fs.String("startup", "", "run the start-up step instead: seed tables of these sizes in turn (e.g. 1000000,10000000) and time replicas to ready")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	svgPath := fs.String("svg", "", "also draw throughput and p99 per scenario to this SVG file")
	mdPath := fs.String("markdown", "", "also write the Markdown report to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (service and load) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Scenarios, cfg.Transports, cfg.Modes = split(*scenarios), split(*transports), split(*modes)
	if cfg.Target != "" {
		// Defaults that cannot apply to a service elsewhere are dropped:
		// the baselines and the restart scenario.
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		if !given["modes"] {
			cfg.Modes = []string{"keyservice"}
		}
		if !given["scenarios"] {
			cfg.Scenarios = slices.DeleteFunc(cfg.Scenarios, func(s string) bool { return s == "restart" })
		}
	}
	for _, n := range split(*startup) {
		v, err := strconv.Atoi(n)
		if err != nil {
			fmt.Fprintf(stderr, "keybench: --startup: %q is not a number of keys\n", n)
			return 2
		}
		cfg.Startup = append(cfg.Startup, v)
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, nil))
	if err := cfg.Check(); err != nil {
		fmt.Fprintln(stderr, "keybench:", err)
		return 2
	}
	for _, p := range []string{*jsonPath, *svgPath, *mdPath} {
		if p != "" {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				fmt.Fprintln(stderr, "keybench:", err)
				return 1
			}
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "keybench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "keybench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "keybench:", err)
		return 1
	}
	rep.WriteMarkdown(stdout)
	if *mdPath != "" {
		f, err := os.Create(*mdPath)
		if err != nil {
			fmt.Fprintln(stderr, "keybench:", err)
			return 1
		}
		rep.WriteMarkdown(f)
		f.Close()
	}
	if *jsonPath != "" {
		if err := rep.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintln(stderr, "keybench:", err)
			return 1
		}
	}
	if *svgPath != "" && len(rep.Results) > 0 {
		f, err := os.Create(*svgPath)
		if err != nil {
			fmt.Fprintln(stderr, "keybench:", err)
			return 1
		}
		err = rep.WriteSVG(f)
		f.Close()
		if err != nil {
			fmt.Fprintln(stderr, "keybench:", err)
			return 1
		}
	}
	return 0
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
