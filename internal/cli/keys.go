package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// The keys commands: the admin API's key calls, and validate.

// admin is what the commands of a group (keys, keyspaces, credentials,
// audit) share: the
// connection and --json, persistent flags of the group.
type admin struct {
	conn
	asJSON bool
}

func (a *admin) register(c *cobra.Command) {
	a.conn.register(c.PersistentFlags())
	c.PersistentFlags().BoolVar(&a.asJSON, "json", false, "print the answer as JSON (the API's field names)")
}

// call dials the service and runs f with the admin token and deadline.
func (a *admin) call(ctx context.Context, f func(context.Context, keyservicev1.KeyServiceClient) error) error {
	ctx, cancel, err := a.adminContext(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	client, closeConn, err := a.dial("the admin token")
	if err != nil {
		return err
	}
	defer closeConn()
	return f(ctx, client)
}

const adminLong = `The admin token is read from KEYSERVICE_ADMIN_TOKEN (never from a flag:
flags show in ps). The service's address is --addr, or KEYSERVICE_ADDR.

Every write (create, update, rotate, enable, disable, revoke) is sent with a
new request_id, and sent again with it while the server answers UNAVAILABLE
(3 tries within --timeout): a write is applied once and a retry gets its
answer. To retry a write yourself, give the id it printed: --request-id ID.`

func keysCmd() *cobra.Command {
	a := &admin{}
	c := group("keys", "Create, inspect, change and validate keys on a running service",
		"Create, inspect, change and validate keys on a running service, over gRPC.\n\n"+adminLong, "admin",
		createCmd(a), getCmd(a), listCmd(a), updateCmd(a), rotateCmd(a),
		stateCmd(a, "enable", "Enable a disabled key"), stateCmd(a, "disable", "Disable a key (it answers DISABLED until enabled)"),
		revokeCmd(a), validateCmd(a))
	a.register(c)
	return c
}

// requestIDFlag adds --request-id to a write.
func requestIDFlag(f *pflag.FlagSet, id *string) {
	f.StringVar(id, "request-id", "", "the write's request_id, a UUID (default: a new one); give an earlier attempt's to retry it safely")
}

func newRequestID(id string) string {
	if id == "" {
		return uuid.NewString()
	}
	return id
}

// printKeys prints a key answer: as JSON, or its secret when it has one,
// then the keys' table.
func (a *admin) printKeys(cmd *cobra.Command, m interface {
	GetKey() *keyservicev1.Key
}, secret string, more ...*keyservicev1.Key) error {
	w := cmd.OutOrStdout()
	if a.asJSON {
		return printJSON(w, m)
	}
	if secret != "" {
		fmt.Fprintf(w, "secret: %s\n(shown only now: store it, keyservice keeps only its hash)\n\n", secret)
	}
	keyTable(w, append([]*keyservicev1.Key{m.GetKey()}, more...))
	return nil
}

func createCmd(a *admin) *cobra.Command {
	var kf keyFields
	var requestID string
	c := &cobra.Command{
		Use:   "create --name N --owner O [flags]",
		Short: "Create a key and print its secret (shown once)",
		Example: `  keyservice keys create --name billing --owner acme --scope read --rate-limit 100/1m
  keyservice keys create --name edge --owner acme --format signed --expires 720h --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := createRequest(kf)
			if err != nil {
				return usageError{err}
			}
			req.RequestId = newRequestID(requestID)
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := send(ctx, retryFlags(req.RequestId, req.GetExpiresAt()), func(ctx context.Context) (*keyservicev1.CreateKeyResponse, error) { return client.CreateKey(ctx, req) })
				if err != nil {
					return err
				}
				return a.printKeys(cmd, resp, resp.GetSecret())
			})
		},
	}
	kf.register(c.Flags(), true)
	requestIDFlag(c.Flags(), &requestID)
	return c
}

func getCmd(a *admin) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a key",
		Args:  exactArgs(1, "one key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := client.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: args[0]})
				if err != nil {
					return rpcErr(err)
				}
				return a.printKeys(cmd, resp, "")
			})
		},
	}
}

// pages are the paging flags of a list.
type pages struct {
	size  int
	token string
	all   bool
}

func (p *pages) register(f *pflag.FlagSet, what string) {
	f.IntVar(&p.size, "page-size", 0, what+" per page (default 100, at most 1000)")
	f.StringVar(&p.token, "page-token", "", "next_page_token of a previous page")
	f.BoolVar(&p.all, "all", false, "follow every page")
}

// collect reads the page p names, or with --all every page from it: fetch
// returns one page's items and the next page's token.
func collect[T any](p *pages, fetch func(size int32, token string) ([]T, string, error)) ([]T, string, error) {
	var out []T
	next := p.token
	for {
		items, n, err := fetch(int32(p.size), next)
		if err != nil {
			return nil, "", rpcErr(err)
		}
		out, next = append(out, items...), n
		if !p.all || next == "" {
			return out, next, nil
		}
	}
}

// more says how to get the next page, if there is one.
func (p *pages) more(w io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(w, "\nmore: --page-token %s (or --all)\n", next)
	}
}

func listCmd(a *admin) *cobra.Command {
	var owner, keyspace, query, state string
	var oldestFirst bool
	var p pages
	c := &cobra.Command{
		Use:     "list [--owner O] [--keyspace K] [--query TEXT] [--state S] [--oldest-first] [flags]",
		Short:   "List keys, newest first",
		Example: "  keyservice keys list --owner acme --all",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st := keyservicev1.KeyState_KEY_STATE_UNSPECIFIED
			if state != "" {
				v, ok := keyservicev1.KeyState_value["KEY_STATE_"+strings.ToUpper(state)]
				if !ok || v == 0 {
					return usageError{fmt.Errorf("--state: %q is not one of active, disabled, expired, revoked", state)}
				}
				st = keyservicev1.KeyState(v)
			}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				keys, next, err := collect(&p, func(size int32, token string) ([]*keyservicev1.Key, string, error) {
					resp, err := client.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: owner, Keyspace: keyspace, Query: query, State: st,
						NewestFirst: !oldestFirst, PageSize: size, PageToken: token})
					return resp.GetKeys(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				if a.asJSON {
					return printJSON(cmd.OutOrStdout(), &keyservicev1.ListKeysResponse{Keys: keys, NextPageToken: next})
				}
				keyTable(cmd.OutOrStdout(), keys)
				p.more(cmd.OutOrStdout(), next)
				return nil
			})
		},
	}
	c.Flags().StringVar(&owner, "owner", "", "only keys of this owner")
	c.Flags().StringVar(&keyspace, "keyspace", "", "only keys of this keyspace (name or id)")
	c.Flags().StringVar(&query, "query", "", "only keys whose name or hint contains this text, ignoring case")
	c.Flags().StringVar(&state, "state", "", "only keys in this state: active, disabled, expired or revoked")
	c.Flags().BoolVar(&oldestFirst, "oldest-first", false, "the oldest keys first")
	p.register(c.Flags(), "keys")
	return c
}

func updateCmd(a *admin) *cobra.Command {
	var kf keyFields
	var u updateFlags
	var requestID string
	c := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change a key: only what the flags given name (they are the update mask)",
		Example: `  keyservice keys update $ID --scope read --scope write --no-meta
  keyservice keys update $ID --rate-limit 10/1s --burst 20 --allow-cidr 203.0.113.0/24`,
		Args: exactArgs(1, "one key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The flags given are the mask; a clearing flag counts only
			// when true (--no-expiry=false changes nothing).
			set := map[string]bool{}
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if f.Value.Type() != "bool" || f.Value.String() == "true" {
					set[f.Name] = true
				}
			})
			req, err := updateRequest(args[0], set, kf, u)
			if err != nil {
				return usageError{err}
			}
			return a.update(cmd, req, requestID)
		},
	}
	kf.register(c.Flags(), false)
	f := c.Flags()
	f.BoolVar(&u.noScopes, "no-scopes", false, "remove every scope")
	f.BoolVar(&u.noMeta, "no-meta", false, "remove all metadata")
	f.BoolVar(&u.noExpiry, "no-expiry", false, "the key never expires")
	f.BoolVar(&u.defaultLimit, "default-rate-limit", false, "use the configured default limit")
	f.BoolVar(&u.anyAddress, "any-address", false, "remove the address restriction")
	requestIDFlag(f, &requestID)
	return c
}

// update sends an UpdateKey and prints the key.
func (a *admin) update(cmd *cobra.Command, req *keyservicev1.UpdateKeyRequest, requestID string) error {
	req.RequestId = newRequestID(requestID)
	var expires *timestamppb.Timestamp
	if slices.Contains(req.GetUpdateMask().GetPaths(), "expires_at") {
		expires = req.GetKey().GetExpiresAt()
	}
	return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
		resp, err := send(ctx, retryFlags(req.RequestId, expires), func(ctx context.Context) (*keyservicev1.UpdateKeyResponse, error) { return client.UpdateKey(ctx, req) })
		if err != nil {
			return err
		}
		return a.printKeys(cmd, resp, "")
	})
}

// stateCmd is enable or disable.
func stateCmd(a *admin, name, short string) *cobra.Command {
	var requestID string
	c := &cobra.Command{
		Use:   name + " ID",
		Short: short,
		Args:  exactArgs(1, "one key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: args[0], Enabled: name == "enable"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}}
			return a.update(cmd, req, requestID)
		},
	}
	requestIDFlag(c.Flags(), &requestID)
	return c
}

func revokeCmd(a *admin) *cobra.Command {
	var requestID string
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key for good (it answers REVOKED)",
		Args:  exactArgs(1, "one key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &keyservicev1.RevokeKeyRequest{Id: args[0], RequestId: newRequestID(requestID)}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := send(ctx, retryFlags(req.RequestId, nil), func(ctx context.Context) (*keyservicev1.RevokeKeyResponse, error) { return client.RevokeKey(ctx, req) })
				if err != nil {
					return err
				}
				return a.printKeys(cmd, resp, "")
			})
		},
	}
	requestIDFlag(c.Flags(), &requestID)
	return c
}

func rotateCmd(a *admin) *cobra.Command {
	var requestID, format string
	var grace time.Duration
	c := &cobra.Command{
		Use:   "rotate ID [--grace 168h] [--format checksum|signed]",
		Short: "Replace a key by a new one; the old stays valid for the grace period (default 0)",
		Long: `Replace a key by a new one with the same settings and print the new secret
(shown once). The old key stays valid for --grace (0 to 720h, default 0:
it expires at once); the table shows both keys, linked by ROTATED_FROM and
ROTATED_TO.`,
		Example: "  keyservice keys rotate $ID --grace 24h",
		Args:    exactArgs(1, "one key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(format)
			if err != nil {
				return usageError{err}
			}
			req := &keyservicev1.RotateKeyRequest{Id: args[0], GracePeriod: durationpb.New(grace), Format: f, RequestId: newRequestID(requestID)}
			return a.call(cmd.Context(), func(ctx context.Context, client keyservicev1.KeyServiceClient) error {
				resp, err := send(ctx, retryFlags(req.RequestId, nil), func(ctx context.Context) (*keyservicev1.RotateKeyResponse, error) { return client.RotateKey(ctx, req) })
				if err != nil {
					return err
				}
				return a.printKeys(cmd, resp, resp.GetSecret(), resp.GetOldKey())
			})
		},
	}
	c.Flags().DurationVar(&grace, "grace", 0, "how long the old key stays valid (0 to 720h)")
	c.Flags().StringVar(&format, "format", "", "the new secret's format: checksum or signed (default: the service's KEYSERVICE_DEFAULT_KEY_FORMAT)")
	requestIDFlag(c.Flags(), &requestID)
	return c
}
