package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/perm"
)

// The credentials commands: stored credentials, each with its permissions
// and keyspaces, to call the service with instead of the admin token.

func credentialsCmd() *cobra.Command {
	a := &admin{}
	c := group("credentials", "Create, list and revoke stored credentials (permissions per keyspace)",
		"Stored credentials of a running service: each may call the methods of its permissions for its\nkeyspaces. Use one as KEYSERVICE_ADMIN_TOKEN, or as a caller's bearer token. A credential\nmay create only credentials within its own permissions, keyspaces and expiry.\n\n"+tenancyLong, "admin",
		credentialCreateCmd(a), credentialListCmd(a), credentialRevokeCmd(a))
	a.register(c)
	return c
}

// credentialFlags are create's flags.
type credentialFlags struct {
	perms, keyspaces           []string
	all                        bool
	expiresIn, expiresAt, rate string
}

// credentialRequest builds CreateCredential's request, refusing what the
// service would refuse for certain (an unknown permission, both or
// neither of the keyspace flags) before anything is sent.
func credentialRequest(name string, f credentialFlags) (*keyservicev1.CreateCredentialRequest, error) {
	names := nonEmpty(f.perms)
	if len(names) == 0 {
		return nil, fmt.Errorf("--permissions is required: one or more of %s, comma-separated", strings.Join(perm.Names(), ", "))
	}
	ps, err := perm.Parse(names)
	if err != nil {
		return nil, fmt.Errorf("--permissions: %w", err)
	}
	spaces := nonEmpty(f.keyspaces)
	switch {
	case f.all && len(spaces) > 0:
		return nil, errors.New("give --all-keyspaces or --keyspaces, not both")
	case !f.all && len(spaces) == 0:
		return nil, errors.New("give --all-keyspaces or --keyspaces a,b: the keyspaces the credential may act on")
	}
	req := &keyservicev1.CreateCredentialRequest{Name: name, Permissions: ps.Names(), AllKeyspaces: f.all, Keyspaces: spaces}
	switch {
	case f.expiresIn != "" && f.expiresAt != "":
		return nil, errors.New("give --expires-in or --expires-at, not both")
	case f.expiresIn != "":
		d, err := time.ParseDuration(f.expiresIn)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--expires-in %q: want a positive duration such as 720h", f.expiresIn)
		}
		req.ExpiresAt = timestamppb.New(time.Now().Add(d))
	case f.expiresAt != "":
		t, err := time.Parse(time.RFC3339, f.expiresAt)
		if err != nil {
			return nil, fmt.Errorf("--expires-at %q: want an RFC 3339 time such as 2030-01-01T00:00:00Z", f.expiresAt)
		}
		req.ExpiresAt = timestamppb.New(t)
	}
	if f.rate != "" {
		if req.RateLimit, err = parseRate("rate", f.rate); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// nonEmpty is a comma-separated flag's items, trimmed, without empty ones
// ("a, b," is a and b).
func nonEmpty(items []string) []string {
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func credentialCreateCmd(a *admin) *cobra.Command {
	var f credentialFlags
	c := &cobra.Command{
		Use:   "create NAME --permissions P,... (--all-keyspaces | --keyspaces K,...) [flags]",
		Short: "Create a credential and print its secret (shown once)",
		Example: `  keyservice credentials create ci-reader --permissions keys.read,audit.read --keyspaces billing --expires-in 720h
  keyservice credentials create edge --permissions keys.validate --all-keyspaces --rate 100/1s --json`,
		Args: exactArgs(1, "one credential name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := credentialRequest(args[0], f)
			if err != nil {
				return usageError{err}
			}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := client.CreateCredential(ctx, req)
				if err != nil {
					return onceErr(err, "see keyservice credentials list; if it is there, its secret is lost: revoke it and create another")
				}
				w := cmd.OutOrStdout()
				if a.asJSON {
					return printJSON(w, resp)
				}
				fmt.Fprintf(w, "secret: %s\nwarning: the secret is not shown again: store it now (keyservice keeps only its hash)\n\n", resp.GetSecret())
				credentialTable(w, []*keyservicev1.Credential{resp.GetCredential()})
				return nil
			})
		},
	}
	fl := c.Flags()
	fl.StringSliceVar(&f.perms, "permissions", nil, "what it may do, comma-separated: "+strings.Join(perm.Names(), ", ")+" (required)")
	fl.BoolVar(&f.all, "all-keyspaces", false, "it may act on every keyspace, present and future")
	fl.StringSliceVar(&f.keyspaces, "keyspaces", nil, "or only on these keyspaces (names or ids), comma-separated")
	fl.StringVar(&f.expiresIn, "expires-in", "", "it expires this long from now, e.g. 720h (default: never)")
	fl.StringVar(&f.expiresAt, "expires-at", "", "it expires at this RFC 3339 time, e.g. 2030-01-01T00:00:00Z")
	fl.StringVar(&f.rate, "rate", "", "its own budget for Validate calls as limit/period, e.g. 100/1s (default: the service's KEYSERVICE_CALLER_RATE)")
	return c
}

func credentialListCmd(a *admin) *cobra.Command {
	var p pages
	c := &cobra.Command{
		Use:     "list [flags]",
		Short:   "List credentials (never their secrets), oldest first",
		Example: "  keyservice credentials list --all",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				creds, next, err := collect(&p, func(size int32, token string) ([]*keyservicev1.Credential, string, error) {
					resp, err := client.ListCredentials(ctx, &keyservicev1.ListCredentialsRequest{PageSize: size, PageToken: token})
					return resp.GetCredentials(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.asJSON {
					return printJSON(cmd.OutOrStdout(), &keyservicev1.ListCredentialsResponse{Credentials: creds, NextPageToken: next})
				}
				credentialTable(cmd.OutOrStdout(), creds)
				p.more(cmd.OutOrStdout(), next)
				return nil
			})
		},
	}
	p.register(c.Flags(), "credentials")
	return c
}

func credentialRevokeCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a credential for good (every replica refuses it within 100 ms)",
		Args:  exactArgs(1, "one credential id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := client.RevokeCredential(ctx, &keyservicev1.RevokeCredentialRequest{Id: args[0]})
				if err != nil {
					return onceErr(err, "run the same command again: revoking twice is harmless")
				}
				if a.asJSON {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				credentialTable(cmd.OutOrStdout(), []*keyservicev1.Credential{resp.GetCredential()})
				return nil
			})
		},
	}
}

// credentialTable prints credentials, one a row.
func credentialTable(w io.Writer, creds []*keyservicev1.Credential) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPERMISSIONS\tKEYSPACES\tRATE\tEXPIRES\tCREATED\tCREATED_BY\tLAST_USED\tREVOKED")
	for _, c := range creds {
		spaces := list(c.GetKeyspaceIds(), "-")
		if c.GetAllKeyspaces() {
			spaces = "all"
		}
		fmt.Fprintln(tw, strings.Join([]string{c.GetId(), c.GetName(), list(c.GetPermissions(), "-"), spaces, rateLimit(c.GetRateLimit()),
			ts(c.GetExpiresAt()), ts(c.GetCreatedAt()), orDash(c.GetCreatedBy()), ts(c.GetLastUsedAt()), ts(c.GetRevokedAt())}, "\t"))
	}
	tw.Flush()
}
