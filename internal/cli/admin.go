package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// The connection of the commands that call a running service (keys,
// audit): its flags, and the call's credentials and deadline.

type conn struct {
	addr      string
	useTLS    bool
	plaintext bool
	caFile    string
	timeout   time.Duration
}

// register adds the connection flags (persistent: every subcommand of
// the group has them).
func (c *conn) register(f *pflag.FlagSet) {
	addr := os.Getenv("KEYSERVICE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	f.StringVar(&c.addr, "addr", addr, "keyservice gRPC address (env KEYSERVICE_ADDR)")
	f.BoolVar(&c.useTLS, "tls", false, "connect with TLS")
	f.BoolVar(&c.plaintext, "plaintext", false, "allow sending a secret (the admin token, a key) without TLS to a non-loopback address")
	f.StringVar(&c.caFile, "ca-file", "", "CA bundle to verify the server (implies --tls)")
	f.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of the whole command, retries included")
}

// adminContext is ctx with the admin token and the deadline; cancel it.
func (c *conn) adminContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	token := os.Getenv("KEYSERVICE_ADMIN_TOKEN")
	if token == "" {
		return nil, nil, errors.New("KEYSERVICE_ADMIN_TOKEN is not set: export the admin token first")
	}
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), c.timeout)
	return ctx, cancel, nil
}

// dial connects; what names the secret the calls will carry.
func (c *conn) dial(what string) (keyservicev1.KeyServiceClient, func(), error) {
	if !c.useTLS && c.caFile == "" && !c.plaintext && !isLoopback(c.addr) {
		return nil, nil, fmt.Errorf("refusing to send %s unencrypted to %s: use --tls (and --ca-file), or --plaintext on a network you trust", what, c.addr)
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
	cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, fmt.Errorf("--addr %q: %w", c.addr, err)
	}
	return keyservicev1.NewKeyServiceClient(cc), func() { cc.Close() }, nil
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
