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

	"github.com/spf13/cobra"

	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/store"
)

// The server commands read the service's settings as internal/config
// declares them (Go flag syntax, each flag with its environment
// variable), so cobra passes their arguments through untouched.

// configCmd makes a server command whose flags are config's.
func configCmd(use, short string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) *cobra.Command {
	c := &cobra.Command{
		Use:                use + " [flags]",
		Short:              short,
		GroupID:            "server",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	// `keyservice help serve` prints what `keyservice serve --help` does.
	c.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		_ = run(context.Background(), []string{"--help"}, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	return c
}

func serveCmd() *cobra.Command {
	return configCmd("serve", "Serve gRPC and REST (needs DATABASE_URL)", serve)
}

func migrateCmd() *cobra.Command {
	return configCmd("migrate", "Apply pending database migrations and exit", migrate)
}

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

func serve(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, stderr, config.Defaults())
	if err != nil {
		return err
	}
	// server.New validates it (once, on every path that serves).
	return server.Run(ctx, cfg, cfg.Logger(os.Stderr))
}

func migrate(ctx context.Context, args []string, _, stderr io.Writer) error {
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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := store.Migrate(ctx, store.PoolConfig{URL: cfg.DatabaseURL, ConnectTimeout: cfg.DBConnectTimeout}, log); err != nil {
		return err
	}
	log.Info("database schema is current")
	return nil
}
