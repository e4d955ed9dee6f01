// Command keyservice validates API keys for other services over gRPC and
// REST, and is their command line: serve, migrate, dev, import, keys and
// audit (internal/cli; docs/cli.md). Run `keyservice --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyservice/keyservice/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
