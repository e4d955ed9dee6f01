// Command keybench measures keyservice against its baselines (a ceiling
// handler and the naive query-per-request design) and under faults; see
// docs/benchmarks.md. The service runs in this process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyservice/keyservice/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
