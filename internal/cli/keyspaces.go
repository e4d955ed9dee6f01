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
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/config"
)

// The keyspaces commands: a product's own prefix and key defaults.

// tenancyLong is the help of the keyspaces and credentials groups: their
// writes carry no request_id in the API, so they are sent once.
const tenancyLong = `The admin token is read from KEYSERVICE_ADMIN_TOKEN (never from a flag:
flags show in ps). The service's address is --addr, or KEYSERVICE_ADDR.

These writes are sent once, never retried: when the service cannot be
reached or the deadline passes, the error says how to see whether the write
was applied.`

func keyspacesCmd() *cobra.Command {
	a := &admin{}
	c := group("keyspaces", "Create, inspect and change keyspaces (a product's own prefix and key defaults)",
		"Keyspaces of a running service: each has its own key prefix and the defaults of its new keys,\nand a key of one keyspace is never valid for another.\n\n"+tenancyLong, "admin",
		keyspaceCreateCmd(a), keyspaceGetCmd(a), keyspaceListCmd(a), keyspaceUpdateCmd(a))
	a.register(c)
	return c
}

// onceErr is rpcErr, and for an outcome the client cannot know how to
// find out whether the write was applied (it is never retried: the API
// has no request_id for it).
func onceErr(err error, check string) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("%w (the write may have been applied: %s)", rpcErr(err), check)
	}
	return rpcErr(err)
}

// keyspaceFlags are the flags of create and update that set a keyspace's
// fields.
type keyspaceFlags struct {
	name, prefix, format, rate, expiry string
	scopes                             []string
}

func (k *keyspaceFlags) register(f *pflag.FlagSet) {
	f.StringVar(&k.format, "default-format", "", "format of its new keys created without --format: checksum or signed (signed needs KEYSERVICE_SIGNING_KEYS)")
	f.StringVar(&k.rate, "default-rate", "", "rate limit of its new keys created without one, as limit/period, e.g. 1000/1m")
	f.StringVar(&k.expiry, "default-expiry", "", "its new keys created without --expires expire this long after creation, e.g. 720h")
	f.StringSliceVar(&k.scopes, "default-scopes", nil, "scopes of its new keys created without any, comma-separated: read,write")
}

// parseRate reads a limit/period flag.
func parseRate(flag, s string) (*keyservicev1.RateLimit, error) {
	l, err := apikey.ParseRate(s)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return &keyservicev1.RateLimit{Limit: int64(l.Limit), Period: durationpb.New(l.Period)}, nil
}

// keyspace is the keyspace the flags describe (those not given left unset).
func (k keyspaceFlags) keyspace() (*keyservicev1.Keyspace, error) {
	format, err := parseFormat(k.format)
	if err != nil {
		return nil, fmt.Errorf("--default-format %q: want checksum or signed", k.format)
	}
	ks := &keyservicev1.Keyspace{Name: k.name, Prefix: k.prefix, DefaultFormat: format, DefaultScopes: k.scopes}
	if k.rate != "" {
		if ks.DefaultRateLimit, err = parseRate("default-rate", k.rate); err != nil {
			return nil, err
		}
	}
	if k.expiry != "" {
		d, err := time.ParseDuration(k.expiry)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--default-expiry %q: want a positive duration such as 720h", k.expiry)
		}
		ks.DefaultExpiry = durationpb.New(d)
	}
	return ks, nil
}

// keyspaceUpdateRequest builds UpdateKeyspace's request: the flags given
// (set) are the mask.
func keyspaceUpdateRequest(id string, set map[string]bool, k keyspaceFlags) (*keyservicev1.UpdateKeyspaceRequest, error) {
	for _, p := range [][2]string{{"default-rate", "clear-default-rate"}, {"default-expiry", "clear-default-expiry"}, {"default-scopes", "clear-default-scopes"}} {
		if set[p[0]] && set[p[1]] {
			return nil, fmt.Errorf("--%s and --%s contradict each other", p[0], p[1])
		}
	}
	// An empty value (an unset shell variable) must not clear the field:
	// clearing has its own flags.
	for _, fl := range []struct {
		name  string
		empty bool
	}{{"name", k.name == ""}, {"default-format", k.format == ""}, {"default-rate", k.rate == ""}, {"default-expiry", k.expiry == ""}, {"default-scopes", len(k.scopes) == 0}} {
		if set[fl.name] && fl.empty {
			return nil, fmt.Errorf("--%s is empty", fl.name)
		}
	}
	ks, err := k.keyspace()
	if err != nil {
		return nil, err
	}
	ks.Id = id
	var paths []string
	for _, f := range []struct {
		flags []string
		path  string
	}{
		{[]string{"name"}, "name"},
		{[]string{"default-format"}, "default_format"},
		{[]string{"default-rate", "clear-default-rate"}, "default_rate_limit"},
		{[]string{"default-expiry", "clear-default-expiry"}, "default_expiry"},
		{[]string{"default-scopes", "clear-default-scopes"}, "default_scopes"},
	} {
		for _, fl := range f.flags {
			if set[fl] {
				paths = append(paths, f.path)
				break
			}
		}
	}
	if len(paths) == 0 {
		return nil, errors.New("nothing to change: give at least one of --name, --default-format, --default-rate, --clear-default-rate, --default-expiry, --clear-default-expiry, --default-scopes, --clear-default-scopes (the prefix never changes)")
	}
	return &keyservicev1.UpdateKeyspaceRequest{Keyspace: ks, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}, nil
}

// printKeyspaces prints an answer as JSON, or the keyspaces' table.
func (a *admin) printKeyspaces(cmd *cobra.Command, m interface{ GetKeyspace() *keyservicev1.Keyspace }) error {
	if a.asJSON {
		return printJSON(cmd.OutOrStdout(), m)
	}
	keyspaceTable(cmd.OutOrStdout(), []*keyservicev1.Keyspace{m.GetKeyspace()})
	return nil
}

func keyspaceCreateCmd(a *admin) *cobra.Command {
	var k keyspaceFlags
	c := &cobra.Command{
		Use:   "create NAME --prefix P [flags]",
		Short: "Create a keyspace",
		Example: `  keyservice keyspaces create billing --prefix bill
  keyservice keyspaces create search --prefix srch --default-rate 1000/1m --default-expiry 720h --default-scopes read`,
		Args: exactArgs(1, "one keyspace name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if k.prefix == "" {
				return usageError{errors.New("--prefix is required: the prefix of the keyspace's keys (fixed once created)")}
			}
			k.name = args[0]
			ks, err := k.keyspace()
			if err != nil {
				return usageError{err}
			}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := client.CreateKeyspace(ctx, &keyservicev1.CreateKeyspaceRequest{Keyspace: ks})
				if err != nil {
					return onceErr(err, "see keyservice keyspaces get "+ks.GetName())
				}
				return a.printKeyspaces(cmd, resp)
			})
		},
	}
	c.Flags().StringVar(&k.prefix, "prefix", "", "the prefix of its keys, 1 to 16 of a-z and 0-9 (required; fixed once created)")
	k.register(c.Flags())
	return c
}

func keyspaceGetCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID|NAME",
		Short: "Show a keyspace",
		Args:  exactArgs(1, "one keyspace id or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := client.GetKeyspace(ctx, &keyservicev1.GetKeyspaceRequest{Id: args[0]})
				if err != nil {
					return rpcErr(err)
				}
				return a.printKeyspaces(cmd, resp)
			})
		},
	}
}

func keyspaceListCmd(a *admin) *cobra.Command {
	var p pages
	c := &cobra.Command{
		Use:     "list [flags]",
		Short:   "List keyspaces, oldest first",
		Example: "  keyservice keyspaces list --all",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				spaces, next, err := collect(&p, func(size int32, token string) ([]*keyservicev1.Keyspace, string, error) {
					resp, err := client.ListKeyspaces(ctx, &keyservicev1.ListKeyspacesRequest{PageSize: size, PageToken: token})
					return resp.GetKeyspaces(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.asJSON {
					return printJSON(cmd.OutOrStdout(), &keyservicev1.ListKeyspacesResponse{Keyspaces: spaces, NextPageToken: next})
				}
				keyspaceTable(cmd.OutOrStdout(), spaces)
				p.more(cmd.OutOrStdout(), next)
				return nil
			})
		},
	}
	p.register(c.Flags(), "keyspaces")
	return c
}

func keyspaceUpdateCmd(a *admin) *cobra.Command {
	var k keyspaceFlags
	var clearRate, clearExpiry, clearScopes bool
	c := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change a keyspace: only what the flags given name (they are the update mask)",
		Example: `  keyservice keyspaces update $KEYSPACE_ID --name invoices
  keyservice keyspaces update $KEYSPACE_ID --default-rate 100/1s --clear-default-expiry`,
		Args: exactArgs(1, "one keyspace id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// As keys update: the flags given are the mask, a clearing
			// flag only when true.
			set := map[string]bool{}
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if f.Value.Type() != "bool" || f.Value.String() == "true" {
					set[f.Name] = true
				}
			})
			req, err := keyspaceUpdateRequest(args[0], set, k)
			if err != nil {
				return usageError{err}
			}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := client.UpdateKeyspace(ctx, req)
				if err != nil {
					return onceErr(err, "see keyservice keyspaces get "+args[0]+", and run the command again if not")
				}
				return a.printKeyspaces(cmd, resp)
			})
		},
	}
	f := c.Flags()
	f.StringVar(&k.name, "name", "", "the keyspace's new name")
	k.register(f)
	f.BoolVar(&clearRate, "clear-default-rate", false, "new keys get the service's configured rate limit")
	f.BoolVar(&clearExpiry, "clear-default-expiry", false, "new keys created without --expires never expire")
	f.BoolVar(&clearScopes, "clear-default-scopes", false, "new keys created without scopes get none")
	return c
}

// keyspaceTable prints keyspaces, one a row.
func keyspaceTable(w io.Writer, spaces []*keyservicev1.Keyspace) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tDEFAULT_FORMAT\tDEFAULT_RATE\tDEFAULT_EXPIRY\tDEFAULT_SCOPES\tCREATED\tUPDATED")
	for _, k := range spaces {
		format := "service"
		if f := k.GetDefaultFormat(); f != keyservicev1.Format_FORMAT_UNSPECIFIED {
			format = strings.ToLower(strings.TrimPrefix(f.String(), "FORMAT_"))
		}
		expiry := "never"
		if d := k.GetDefaultExpiry(); d != nil {
			expiry = config.ShortDuration(d.AsDuration())
		}
		fmt.Fprintln(tw, strings.Join([]string{k.GetId(), k.GetName(), k.GetPrefix(), format, rateLimit(k.GetDefaultRateLimit()), expiry,
			list(k.GetDefaultScopes(), "-"), ts(k.GetCreatedAt()), ts(k.GetUpdatedAt())}, "\t"))
	}
	tw.Flush()
}
