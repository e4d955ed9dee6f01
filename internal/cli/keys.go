package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

const keysUsage = `Usage: keyservice keys <create|get|list|update|rotate|enable|disable|revoke> [flags]
       keyservice audit list [flags]

Admin commands against a running keyservice over gRPC. The admin token is
read from KEYSERVICE_ADMIN_TOKEN (never from a flag: flags show in ps).

  keys create --name N --owner O [--scope S]... [--meta k=v]... [--expires 2030-01-01T00:00:00Z|720h]
              [--rate-limit 100/1m] [--burst B] [--allow-cidr 203.0.113.0/24]...
  keys get ID
  keys list [--owner O] [--page-size N] [--page-token T] [--all]
  keys update ID [--name N] [--scope S]... [--no-scopes] [--meta k=v]... [--no-meta]
              [--expires T|--no-expiry] [--rate-limit 100/1m [--burst B]|--default-rate-limit]
              [--allow-cidr C]... [--any-address]
              (changes only what is given: the flags are the update mask)
  keys rotate ID [--grace 168h]    (the old key stays valid for the grace period; default 0)
  keys enable ID
  keys disable ID
  keys revoke ID
  audit list [--key ID] [--actor NAME] [--page-size N] [--page-token T] [--all]

Every write (create, update, rotate, enable, disable, revoke) is sent with a
new request_id, and sent again with it while the server answers UNAVAILABLE
(3 tries): a write is applied once and a retry gets its answer. To retry a
write yourself, give the id it printed: --request-id ID.

Common flags: --addr host:port (env KEYSERVICE_ADDR, default 127.0.0.1:9090),
--tls, --ca-file F, --json (machine-readable output), --timeout 10s.
`

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type keysCmd struct {
	addr      string
	useTLS    bool
	plaintext bool
	caFile    string
	asJSON    bool
	timeout   time.Duration
	out       io.Writer
}

func auditMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return adminMain(ctx, "audit", args, stdout, stderr)
}

func keysMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return adminMain(ctx, "keys", args, stdout, stderr)
}

func adminMain(ctx context.Context, group string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	sub, rest := args[0], args[1:]
	if group == "audit" {
		if sub != "list" {
			fmt.Fprintf(stderr, "keyservice audit: unknown command %q\n\n%s", sub, keysUsage)
			return errUsage
		}
		sub = "audit-list"
	}
	c := &keysCmd{out: stdout}
	fs := flag.NewFlagSet("keyservice "+group+" "+strings.TrimPrefix(sub, "audit-"), flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	addr := os.Getenv("KEYSERVICE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	fs.StringVar(&c.addr, "addr", addr, "keyservice gRPC address")
	fs.BoolVar(&c.useTLS, "tls", false, "connect with TLS")
	fs.BoolVar(&c.plaintext, "plaintext", false, "allow sending the admin token without TLS to a non-loopback address")
	fs.StringVar(&c.caFile, "ca-file", "", "CA bundle to verify the server (implies --tls)")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of the call")

	var (
		name, owner, expires, rateLimit, pageToken string
		keyID, actor                               string
		burst, pageSize                            int
		all                                        bool
		scopes, meta, cidrs                        multi
		grace                                      time.Duration
		u                                          updateFlags
		requestID                                  string
	)
	switch sub {
	case "create", "update", "rotate", "enable", "disable", "revoke":
		fs.StringVar(&requestID, "request-id", "", "the write's request_id, a UUID (default: a new one); give an earlier attempt's to retry it safely")
	}
	switch sub {
	case "create", "update":
		fs.StringVar(&name, "name", "", "key name (required)")
		fs.Var(&scopes, "scope", "scope (repeat for several)")
		fs.Var(&meta, "meta", "metadata key=value (repeat for several)")
		fs.StringVar(&expires, "expires", "", "expiry: an RFC 3339 time or a duration from now (720h)")
		fs.StringVar(&rateLimit, "rate-limit", "", "the key's own limit as limit/period, e.g. 100/1m")
		fs.IntVar(&burst, "burst", 0, "burst of the key's limit (default: the limit)")
		fs.Var(&cidrs, "allow-cidr", "an address range the key may be used from, e.g. 203.0.113.0/24 (repeat for several)")
		if sub == "create" {
			fs.StringVar(&owner, "owner", "", "owner, the customer the key belongs to (required)")
		} else {
			fs.BoolVar(&u.noScopes, "no-scopes", false, "remove every scope")
			fs.BoolVar(&u.noMeta, "no-meta", false, "remove all metadata")
			fs.BoolVar(&u.noExpiry, "no-expiry", false, "the key never expires")
			fs.BoolVar(&u.defaultLimit, "default-rate-limit", false, "use the configured default limit")
			fs.BoolVar(&u.anyAddress, "any-address", false, "remove the address restriction")
		}
	case "list":
		fs.StringVar(&owner, "owner", "", "only keys of this owner")
		fs.IntVar(&pageSize, "page-size", 0, "keys per page (default 100, at most 1000)")
		fs.StringVar(&pageToken, "page-token", "", "next_page_token of a previous page")
		fs.BoolVar(&all, "all", false, "follow every page")
	case "audit-list":
		fs.StringVar(&keyID, "key", "", "only events of this key id")
		fs.StringVar(&actor, "actor", "", "only events by this admin (token name)")
		fs.IntVar(&pageSize, "page-size", 0, "events per page (default 100, at most 1000)")
		fs.StringVar(&pageToken, "page-token", "", "next_page_token of a previous page")
		fs.BoolVar(&all, "all", false, "follow every page")
	case "rotate":
		fs.DurationVar(&grace, "grace", 0, "how long the old key stays valid (0 to 720h)")
	case "get", "revoke", "enable", "disable":
	default:
		fmt.Fprintf(stderr, "keyservice keys: unknown command %q\n\n%s", sub, keysUsage)
		return errUsage
	}
	// Flags may come before or after the key id.
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	args = positional
	// Usage mistakes are found before anything else (exit 2), so a
	// missing id is not reported as a missing token.
	var req *keyservicev1.CreateKeyRequest
	var upd *keyservicev1.UpdateKeyRequest
	switch sub {
	case "create":
		r, err := createRequest(args, name, owner, expires, rateLimit, burst, scopes, meta)
		if err != nil {
			return usageError{err}
		}
		r.AllowedCidrs = cidrs
		req = r
	case "update":
		if len(args) != 1 {
			return usageError{fmt.Errorf("keys %s takes one key id", sub)}
		}
		// The flags given are the mask; a clearing flag counts only when
		// true (--no-expiry=false changes nothing).
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) {
			if g, ok := f.Value.(flag.Getter); ok {
				if b, isBool := g.Get().(bool); isBool && !b {
					return
				}
			}
			set[f.Name] = true
		})
		r, err := updateRequest(args[0], set, name, expires, rateLimit, burst, scopes, meta, cidrs, u)
		if err != nil {
			return usageError{err}
		}
		upd = r
	case "get", "revoke", "rotate", "enable", "disable":
		if len(args) != 1 {
			return usageError{fmt.Errorf("keys %s takes one key id", sub)}
		}
	case "audit-list":
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected argument %q", args[0])}
		}
	case "list":
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected argument %q", args[0])}
		}
	}
	if requestID == "" {
		requestID = uuid.NewString()
	}
	token := os.Getenv("KEYSERVICE_ADMIN_TOKEN")
	if token == "" {
		return errors.New("KEYSERVICE_ADMIN_TOKEN is not set: export the admin token first")
	}
	client, closeConn, err := c.dial()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), c.timeout)
	defer cancel()

	switch sub {
	case "create":
		req.RequestId = requestID
		resp, err := send(ctx, retryFlags(requestID, req.GetExpiresAt()), func(ctx context.Context) (*keyservicev1.CreateKeyResponse, error) { return client.CreateKey(ctx, req) })
		if err != nil {
			return err
		}
		if c.asJSON {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.out, "secret: %s\n(shown only now: store it, keyservice keeps only its hash)\n\n", resp.GetSecret())
		c.table([]*keyservicev1.Key{resp.GetKey()})
	case "get", "revoke":
		var k *keyservicev1.Key
		var m proto.Message
		if sub == "get" {
			resp, err := client.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: args[0]})
			if err != nil {
				return rpcErr(err)
			}
			k, m = resp.GetKey(), resp
		} else {
			r := &keyservicev1.RevokeKeyRequest{Id: args[0], RequestId: requestID}
			resp, err := send(ctx, retryFlags(requestID, nil), func(ctx context.Context) (*keyservicev1.RevokeKeyResponse, error) { return client.RevokeKey(ctx, r) })
			if err != nil {
				return err
			}
			k, m = resp.GetKey(), resp
		}
		if c.asJSON {
			return c.printJSON(m)
		}
		c.table([]*keyservicev1.Key{k})
	case "update", "enable", "disable":
		if sub != "update" {
			upd = &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: args[0], Enabled: sub == "enable"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}}
		}
		upd.RequestId = requestID
		var expires *timestamppb.Timestamp
		if slices.Contains(upd.GetUpdateMask().GetPaths(), "expires_at") {
			expires = upd.GetKey().GetExpiresAt()
		}
		resp, err := send(ctx, retryFlags(requestID, expires), func(ctx context.Context) (*keyservicev1.UpdateKeyResponse, error) { return client.UpdateKey(ctx, upd) })
		if err != nil {
			return err
		}
		if c.asJSON {
			return c.printJSON(resp)
		}
		c.table([]*keyservicev1.Key{resp.GetKey()})
	case "rotate":
		r := &keyservicev1.RotateKeyRequest{Id: args[0], GracePeriod: durationpb.New(grace), RequestId: requestID}
		resp, err := send(ctx, retryFlags(requestID, nil), func(ctx context.Context) (*keyservicev1.RotateKeyResponse, error) { return client.RotateKey(ctx, r) })
		if err != nil {
			return err
		}
		if c.asJSON {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.out, "secret: %s\n(shown only now: store it, keyservice keeps only its hash)\n\n", resp.GetSecret())
		c.table([]*keyservicev1.Key{resp.GetKey(), resp.GetOldKey()})
	case "audit-list":
		var events []*keyservicev1.AuditEvent
		next := pageToken
		for {
			resp, err := client.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: keyID, Actor: actor, PageSize: int32(pageSize), PageToken: next})
			if err != nil {
				return rpcErr(err)
			}
			events = append(events, resp.GetEvents()...)
			next = resp.GetNextPageToken()
			if !all || next == "" {
				break
			}
		}
		if c.asJSON {
			return c.printJSON(&keyservicev1.ListAuditEventsResponse{Events: events, NextPageToken: next})
		}
		c.auditTable(events)
		if next != "" {
			fmt.Fprintf(c.out, "\nmore: --page-token %s (or --all)\n", next)
		}
	case "list":
		if len(args) > 0 {
			return fmt.Errorf("unexpected argument %q", args[0])
		}
		var keys []*keyservicev1.Key
		next := pageToken
		for {
			resp, err := client.ListKeys(ctx, &keyservicev1.ListKeysRequest{Owner: owner, PageSize: int32(pageSize), PageToken: next})
			if err != nil {
				return rpcErr(err)
			}
			keys = append(keys, resp.GetKeys()...)
			next = resp.GetNextPageToken()
			if !all || next == "" {
				break
			}
		}
		if c.asJSON {
			return c.printJSON(&keyservicev1.ListKeysResponse{Keys: keys, NextPageToken: next})
		}
		c.table(keys)
		if next != "" {
			fmt.Fprintf(c.out, "\nmore: --page-token %s (or --all)\n", next)
		}
	}
	return nil
}

func (c *keysCmd) dial() (keyservicev1.KeyServiceClient, func(), error) {
	if !c.useTLS && c.caFile == "" && !c.plaintext && !isLoopback(c.addr) {
		return nil, nil, fmt.Errorf("refusing to send the admin token unencrypted to %s: use --tls (and --ca-file), or --plaintext on a network you trust", c.addr)
	}
	creds := insecure.NewCredentials()
	if c.useTLS || c.caFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, nil, fmt.Errorf("--ca-file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("--ca-file: no PEM certificate in %s", c.caFile)
			}
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, fmt.Errorf("--addr %q: %w", c.addr, err)
	}
	return keyservicev1.NewKeyServiceClient(conn), func() { conn.Close() }, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// rpcErr turns a status into one clear line.
func rpcErr(err error) error {
	st := status.Convert(err)
	return fmt.Errorf("%s: %s", st.Code(), st.Message())
}

// usageError is a mistake in the command line: exit 2, with its message.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Is(target error) bool { return target == errUsage }
