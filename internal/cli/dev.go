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
	"path/filepath"
	"strings"
	"syscall"
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
	defaults := devDefaults()
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
	tokenNote := ""
	if len(cfg.AdminTokens) == 0 {
		// Kept next to the data, so it stays valid as long as the keys do.
		tok, note, err := devToken(filepath.Clean(dataDir) + ".admin-token")
		if err != nil {
			return err
		}
		cfg.AdminTokens, tokenNote = []string{tok}, note
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
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	s, err := server.New(ctx, cfg, cfg.Logger(os.Stderr))
	if err != nil {
		return err
	}
	printExamples(stdout, cfg.AdminTokens[0], tokenNote, loopback(s.GRPCAddr()), loopback(s.HTTPAddr()))
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

// devDefaults are serve's defaults, except that the development server
// listens on loopback only (it prints 127.0.0.1 addresses, and its admin
// token is printed for anyone to paste), logs text, and migrates.
func devDefaults() config.Config {
	d := config.Defaults()
	d.GRPCAddr, d.HTTPAddr = "127.0.0.1:9090", "127.0.0.1:8080"
	d.LogFormat = "text"
	d.Migrate = true
	return d
}

// devToken reads the development admin token kept at path, or makes one
// and keeps it there. note says which, for the banner. The file is trusted
// only if it is a regular file of this user, readable by no one else: a
// token planted by someone else would be theirs to use.
func devToken(path string) (token, note string, err error) {
	if st, err := os.Lstat(path); err == nil {
		owned := false
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			owned = int(sys.Uid) == os.Geteuid()
		}
		if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 || !owned {
			return "", "", fmt.Errorf("%s is not a private file of yours (a regular file, mode 0600): remove it, or set KEYSERVICE_ADMIN_TOKENS", path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", "", err
		}
		if tok := strings.TrimSpace(string(b)); len(tok) >= config.MinTokenLen {
			return tok, "the same as last time, kept in " + path, nil
		}
	}
	tok := "dev_" + rand.Text()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", "", err
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	return tok, "new, kept in " + path + " for the next runs", nil
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

Paste into another shell (the admin token is {{.Note}}):

  export KEYSERVICE_ADMIN_TOKEN={{.Token}}

  # --- CLI ---
  {{.Bin}} keys create --name demo --owner acme --scope read --addr {{.GRPC}}
  {{.Bin}} keys list --addr {{.GRPC}}

  # --- gRPC (grpcurl) ---
  grpcurl -plaintext -H "authorization: Bearer $KEYSERVICE_ADMIN_TOKEN" \
    -d '{"name":"demo","owner":"acme","scopes":["read"]}' \
    {{.GRPC}} keyservice.v1.KeyService/CreateKey
  # copy "secret" and "key.id" from the answer:
  export KS_KEY=<secret> KS_KEY_ID=<key.id>
  grpcurl -plaintext -d "{\"key\":\"$KS_KEY\"}" {{.GRPC}} keyservice.v1.KeyService/Validate
  grpcurl -plaintext -H "authorization: Bearer $KEYSERVICE_ADMIN_TOKEN" -d "{\"id\":\"$KS_KEY_ID\"}" \
    {{.GRPC}} keyservice.v1.KeyService/RevokeKey
  grpcurl -plaintext -d "{\"key\":\"$KS_KEY\"}" {{.GRPC}} keyservice.v1.KeyService/Validate

  # --- REST (curl) ---
  curl -s -X POST http://{{.HTTP}}/v1/keys -H "authorization: Bearer $KEYSERVICE_ADMIN_TOKEN" \
    -d '{"name":"demo","owner":"acme","scopes":["read"]}'
  # copy "secret" and "key.id" from the answer:
  export KS_KEY=<secret> KS_KEY_ID=<key.id>
  curl -s -X POST http://{{.HTTP}}/v1/keys:validate -d "{\"key\":\"$KS_KEY\"}"
  curl -s -X POST http://{{.HTTP}}/v1/keys/$KS_KEY_ID:revoke -H "authorization: Bearer $KEYSERVICE_ADMIN_TOKEN"
  curl -s -X POST http://{{.HTTP}}/v1/keys:validate -d "{\"key\":\"$KS_KEY\"}"
  curl -s "http://{{.HTTP}}/v1/keys?owner=acme" -H "authorization: Bearer $KEYSERVICE_ADMIN_TOKEN"

`))

func printExamples(w io.Writer, token, note, grpcAddr, httpAddr string) {
	if note == "" {
		note = "from KEYSERVICE_ADMIN_TOKENS"
	}
	_ = examples.Execute(w, struct{ Token, Note, Bin, GRPC, HTTP string }{token, note, binPath(), grpcAddr, httpAddr})
}

// binPath is how the running binary is named in a pasted command: its path
// relative to the working directory (./bin/keyservice after make run).
func binPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "keyservice"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + rel
		}
	}
	return exe
}
