package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc/metadata"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// notValid is the answer "the key is not valid" (exit 3): not a failure
// of the command, and nothing more to print.
type notValid struct{ code keyservicev1.Code }

func (e notValid) Error() string { return "the key is not valid: " + e.code.String() }

const validateLong = `Ask the service whether a key is valid, as a service protecting an API
would (the Validate call). It prints the outcome (VALID, MALFORMED,
NOT_FOUND, REVOKED, EXPIRED, RATE_LIMITED, DISABLED, FORBIDDEN,
INSUFFICIENT_SCOPE), the key's budget and its record. Exit 0 when the key is
VALID, 3 when the answer is anything else, 1 when there is no answer.

The key is a secret, so it is never taken from the command line (the
command line shows in ps and in shell history). It is read, in this order:
  --key-stdin            from the first line of standard input
  KEYSERVICE_KEY         from this environment variable, when set
  a prompt               typed at the terminal, not echoed
Validation spends the key's rate limit (--cost 0 checks without spending).
When the service requires caller credentials (KEYSERVICE_CALLER_TOKENS),
put this caller's token in KEYSERVICE_CALLER_TOKEN. No admin token is needed.`

func validateCmd(a *admin) *cobra.Command {
	var (
		fromStdin bool
		scopes    []string
		clientIP  string
		keyspace  string
		cost      int32
	)
	c := &cobra.Command{
		Use:   "validate [--key-stdin] [--scope S]... [flags]",
		Short: "Check a key as a protected service would (the key from stdin, env or a prompt)",
		Long:  validateLong,
		Example: `  printf '%s' "$KS_KEY" | keyservice keys validate --key-stdin --scope read
  KEYSERVICE_KEY="$KS_KEY" keyservice keys validate --json --cost 0`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := readKey(cmd, fromStdin)
			if err != nil {
				return err
			}
			req := &keyservicev1.ValidateRequest{Key: key, ClientIp: clientIP, RequiredScopes: scopes, Keyspace: keyspace}
			if cmd.Flags().Changed("cost") {
				req.Cost = &cost
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
			defer cancel()
			if tok := os.Getenv("KEYSERVICE_CALLER_TOKEN"); tok != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
			}
			client, closeConn, err := a.dial("the key")
			if err != nil {
				return err
			}
			defer closeConn()
			resp, err := client.Validate(ctx, req)
			if err != nil {
				return rpcErr(err)
			}
			if a.asJSON {
				if err := printJSON(cmd.OutOrStdout(), resp); err != nil {
					return err
				}
			} else {
				validateAnswer(cmd.OutOrStdout(), resp)
			}
			if !resp.GetValid() {
				return notValid{resp.GetCode()}
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&fromStdin, "key-stdin", false, "read the key from the first line of standard input")
	f.StringArrayVar(&scopes, "scope", nil, "a scope the call needs (repeat for several): without it the answer is INSUFFICIENT_SCOPE")
	f.StringVar(&clientIP, "client-ip", "", "the end client's address, checked against the key's allowed CIDRs")
	f.StringVar(&keyspace, "keyspace", "", "the keyspace (name or id) the key must belong to: a key of another answers NOT_FOUND")
	f.Int32Var(&cost, "cost", 1, "how much of the key's rate limit the call spends (0: check without spending)")
	return c
}

// readKey reads the key to validate: from standard input with
// --key-stdin, else from KEYSERVICE_KEY, else from a prompt.
func readKey(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the key from standard input: %w", err)
		}
		if key := strings.TrimSpace(line); key != "" {
			return key, nil
		}
		return "", usageError{errors.New("--key-stdin: standard input held no key")}
	}
	if key := strings.TrimSpace(os.Getenv("KEYSERVICE_KEY")); key != "" {
		return key, nil
	}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "key (not echoed): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading the key: %w", err)
		}
		if key := strings.TrimSpace(string(b)); key != "" {
			return key, nil
		}
	}
	return "", usageError{errors.New("no key to validate: pipe it in with --key-stdin, or set KEYSERVICE_KEY (never on the command line: it shows in ps)")}
}
