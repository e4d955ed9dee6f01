// Package cli owns keyservice's command line: its commands (serve,
// migrate, dev, import, keys, keyspaces, credentials, audit), their flags, help and exit codes.
// Each command group has its file; the commands are cobra commands.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // the command failed
	exitUsage    = 2 // a mistake in the command line
	exitNotValid = 3 // keys validate: answered, and the key is not valid
)

// Main runs the command in args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainIO(ctx, args, os.Stdin, stdout, stderr)
}

// MainIO is Main with standard input given (keys validate --key-stdin
// and import - read it).
func MainIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetIn(stdin)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var nv notValid
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &nv):
		return exitNotValid
	case errors.Is(err, errUsage):
		if ue := (usageError{}); errors.As(err, &ue) {
			fmt.Fprintln(stderr, "keyservice:", ue.err)
		}
		return exitUsage
	}
	fmt.Fprintln(stderr, "keyservice:", err)
	return exitError
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "keyservice",
		Short: "keyservice validates API keys for other services, over gRPC and REST",
		Long: `keyservice validates API keys for other services, over gRPC and REST.

The server commands (serve, migrate, dev) read their settings from flags and
environment variables: run 'keyservice serve --help' for them. The admin
commands (keys, keyspaces, credentials, audit) talk to a running service over
gRPC with the admin token (or a stored credential) in KEYSERVICE_ADMIN_TOKEN.
Run 'keyservice <command> --help' for the flags of any command.

Exit codes: 0 success, 1 failure, 2 a mistake in the command line,
3 'keys validate' answered that the key is not valid.`,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          groupRun,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddGroup(&cobra.Group{ID: "server", Title: "Server and database commands:"}, &cobra.Group{ID: "admin", Title: "Admin commands (against a running service):"})
	root.AddCommand(serveCmd(), migrateCmd(), devCmd(), importCmd(), keysCmd(), keyspacesCmd(), credentialsCmd(), auditCmd(), usageCmd())
	return root
}

// groupRun is the Run of a command that only groups others: given no
// command it prints its help and exits 2; an unknown one is a usage error.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		cmd.SetOut(cmd.ErrOrStderr())
		_ = cmd.Help()
		return errUsage
	}
	return usageError{fmt.Errorf("unknown command %s for %q (run '%s --help')", shown(args[0]), cmd.CommandPath(), cmd.CommandPath())}
}

// shown quotes a positional argument in an error only when it looks like
// a command word: anything else may be a key pasted in the wrong place,
// and an error message ends up in logs.
func shown(arg string) string {
	if len(arg) <= 24 && strings.IndexFunc(arg, func(r rune) bool { return (r < 'a' || r > 'z') && r != '-' }) < 0 {
		return strconv.Quote(arg)
	}
	return "(not shown: it may be a secret)"
}

// group makes a command that only groups its subcommands.
func group(use, short, long, groupID string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Long: long, GroupID: groupID, Args: cobra.ArbitraryArgs, RunE: groupRun}
	c.AddCommand(subs...)
	return c
}

var errUsage = errors.New("usage")

// usageError is a mistake in the command line: exit 2, with its message.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Is(target error) bool { return target == errUsage }

// exactArgs wants n positional arguments, named what in the message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s", cmd.CommandPath()[len("keyservice "):], what)}
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %s (a key is never read from the command line: see --help)", cmd.CommandPath()[len("keyservice "):], shown(args[0]))}
	}
	return nil
}
