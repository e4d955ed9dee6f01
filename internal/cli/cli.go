// Package cli owns keyservice's command line: the subcommands serve,
// migrate and dev, their flags, and their exit codes.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/store"
)

const usage = `keyservice validates API keys for other services, over gRPC and REST.

Usage:
  keyservice serve   [flags]   serve gRPC and REST (needs DATABASE_URL)
  keyservice migrate [flags]   apply pending database migrations and exit
  keyservice dev     [flags]   development: private Postgres if DATABASE_URL is unset,
                               migrate, a dev admin token, serve, print examples
  keyservice keys    <create|get|list|update|rotate|enable|disable|revoke> [flags]
                               admin commands against a running service
                               (token from KEYSERVICE_ADMIN_TOKEN)
  keyservice audit   list [flags]
                               who changed which key, newest first
  keyservice import  [--skip-bad] FILE|-
                               bring existing keys in by their SHA-256 (JSON Lines; needs DATABASE_URL)

Run 'keyservice <command> --help' for the flags; each flag also reads the
environment variable named in its help.
`

// Main runs the command in args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "migrate":
		err = migrate(ctx, args[1:], stderr)
	case "dev":
		err = dev(ctx, args[1:], stdout, stderr)
	case "keys":
		err = keysMain(ctx, args[1:], stdout, stderr)
	case "audit":
		err = auditMain(ctx, args[1:], stdout, stderr)
	case "import":
		err = importKeys(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "keyservice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		if ue := (usageError{}); errors.As(err, &ue) {
			fmt.Fprintln(stderr, "keyservice:", ue.err)
		}
		return 2
	}
	fmt.Fprintln(stderr, "keyservice:", err)
	return 1
}

var errUsage = errors.New("usage")

// parseConfig reads flags and environment into a validated Config.
// extra registers command-specific flags.
func parseConfig(name string, args []string, stderr io.Writer, defaults config.Config, extra ...func(*flag.FlagSet)) (config.Config, error) {
	cfg := defaults
	fs := flag.NewFlagSet("keyservice "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, f := range extra {
		f(fs)
	}
	if err := cfg.Parse(fs, args, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		if fs.Parsed() {
			// An environment variable was bad; flag errors are printed by fs.
			fmt.Fprintln(stderr, "keyservice:", err)
		}
		return cfg, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "keyservice %s: unexpected argument %q\n", name, fs.Arg(0))
		return cfg, errUsage
	}
	return cfg, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, stderr, config.Defaults())
	if err != nil {
		return err
	}
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return server.Run(ctx, cfg, cfg.Logger(os.Stderr))
}

func migrate(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseConfig("migrate", args, stderr, config.Defaults())
	if err != nil {
		return err
	}
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return runMigrations(ctx, cfg, cfg.Logger(os.Stderr))
}

func runMigrations(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	pool, err := store.OpenPool(ctx, store.PoolConfig{URL: cfg.DatabaseURL, MaxConns: 2, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := store.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := m.Up(ctx, log); err != nil {
		return err
	}
	log.Info("database schema is current")
	return nil
}
