// Command keybench measures keyservice against its baselines (a ceiling
// handler and the naive query-per-request design), under faults, and at
// start-up; see docs/benchmarks.md. The service runs in this process,
// except in the start-up step, where keybench runs itself as `keyservice
// serve` (KEYBENCH_CHILD=serve) for each replica.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyservice/keyservice/internal/bench"
	"github.com/keyservice/keyservice/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	switch os.Getenv(bench.ChildEnv) {
	case "serve":
		code = cli.Main(ctx, []string{"serve"}, os.Stdout, os.Stderr)
	case "flood":
		code = bench.FloodChild(ctx, os.Stdin, os.Stdout)
	default:
		code = bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}
