package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/pglocal"
	"github.com/keyservice/keyservice/internal/server"
)

// devDataDir is where `keyservice dev` keeps its private cluster (git-ignored).
const devDataDir = ".data/postgres"

func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	defaults := config.Defaults()
	defaults.LogFormat = "text"
	defaults.Migrate = true
	dataDir := devDataDir
	if v := os.Getenv("KEYSERVICE_DEV_DATA_DIR"); v != "" {
		dataDir = v
	}
	cfg, err := parseConfig("dev", args, stderr, defaults, func(fs *flag.FlagSet) {
		fs.StringVar(&dataDir, "data-dir", dataDir, "data folder of the private PostgreSQL cluster, used when DATABASE_URL is unset (env KEYSERVICE_DEV_DATA_DIR)")
	})
	if err != nil {
		return err
	}
	cfg.Migrate = true
	if len(cfg.AdminTokens) == 0 {
		cfg.AdminTokens = []string{"dev_" + rand.Text()}
	}
	if cfg.DatabaseURL == "" {
		cluster, url, err := startDevCluster(ctx, dataDir, stdout)
		if err != nil {
			return err
		}
		defer func() {
			fmt.Fprintln(stdout, "stopping the private PostgreSQL cluster")
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := cluster.Stop(sctx); err != nil {
				fmt.Fprintln(stderr, "keyservice dev:", err)
			}
		}()
		cfg.DatabaseURL = url
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	s, err := server.New(ctx, cfg, cfg.Logger(os.Stderr))
	if err != nil {
		return err
	}
	printExamples(stdout, cfg.AdminTokens[0], loopback(s.GRPCAddr()), loopback(s.HTTPAddr()))
	return s.Serve(ctx)
}

func startDevCluster(ctx context.Context, dataDir string, stdout io.Writer) (*pglocal.Cluster, string, error) {
	fmt.Fprintf(stdout, "DATABASE_URL is not set: starting a private PostgreSQL cluster in %s\n", dataDir)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := pglocal.Start(sctx, pglocal.Options{Dir: dataDir})
	if err != nil {
		if errors.Is(err, pglocal.ErrNoBinaries) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("starting the private PostgreSQL cluster: %w", err)
	}
	conn, err := pgx.Connect(sctx, c.URL("postgres"))
	if err == nil {
		defer conn.Close(context.Background())
		var exists bool
		err = conn.QueryRow(sctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'keyservice')").Scan(&exists)
		if err == nil && !exists {
			_, err = conn.Exec(sctx, "CREATE DATABASE keyservice")
		}
	}
	if err != nil {
		_ = c.Stop(context.Background())
		return nil, "", fmt.Errorf("preparing the private cluster: %w", err)
	}
	return c, c.URL("keyservice"), nil
}

// loopback turns a wildcard listen address into one a local client can dial.
func loopback(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

var examples = template.Must(template.New("").Parse(`
keyservice is running (development mode). Ctrl-C stops it.

  gRPC  {{.GRPC}}   (reflection on: grpcurl -plaintext {{.GRPC}} list)
  REST  http://{{.HTTP}}   (OpenAPI: http://{{.HTTP}}/openapi.json)

Paste into another shell:

  export KS_ADMIN_TOKEN={{.Token}}

  # --- gRPC (grpcurl) ---
  grpcurl -plaintext -H "authorization: Bearer $KS_ADMIN_TOKEN" \
    -d '{"name":"demo","owner":"acme","scopes":["read"]}' \
    {{.GRPC}} keyservice.v1.KeyService/CreateKey
  # copy "secret" and "key.id" from the answer:
  export KS_KEY=<secret> KS_KEY_ID=<key.id>
  grpcurl -plaintext -d "{\"key\":\"$KS_KEY\"}" {{.GRPC}} keyservice.v1.KeyService/Validate
  grpcurl -plaintext -H "authorization: Bearer $KS_ADMIN_TOKEN" -d "{\"id\":\"$KS_KEY_ID\"}" \
    {{.GRPC}} keyservice.v1.KeyService/RevokeKey
  grpcurl -plaintext -d "{\"key\":\"$KS_KEY\"}" {{.GRPC}} keyservice.v1.KeyService/Validate

  # --- REST (curl) ---
  curl -s -X POST http://{{.HTTP}}/v1/keys -H "authorization: Bearer $KS_ADMIN_TOKEN" \
    -d '{"name":"demo","owner":"acme","scopes":["read"]}'
  # copy "secret" and "key.id" from the answer:
  export KS_KEY=<secret> KS_KEY_ID=<key.id>
  curl -s -X POST http://{{.HTTP}}/v1/keys:validate -d "{\"key\":\"$KS_KEY\"}"
  curl -s -X POST http://{{.HTTP}}/v1/keys/$KS_KEY_ID:revoke -H "authorization: Bearer $KS_ADMIN_TOKEN"
  curl -s -X POST http://{{.HTTP}}/v1/keys:validate -d "{\"key\":\"$KS_KEY\"}"
  curl -s "http://{{.HTTP}}/v1/keys?owner=acme" -H "authorization: Bearer $KS_ADMIN_TOKEN"

`))

func printExamples(w io.Writer, token, grpcAddr, httpAddr string) {
	_ = examples.Execute(w, struct{ Token, GRPC, HTTP string }{token, grpcAddr, httpAddr})
}
