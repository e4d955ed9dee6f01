package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/keys"
)

// parseTarget reads --target grpc=HOST:PORT,http=HOST:PORT.
func parseTarget(s string) (remote, error) {
	var r remote
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case ok && k == "grpc" && v != "":
			r.grpc = hostPort(v)
		case ok && k == "http" && v != "":
			r.http = hostPort(v)
		default:
			return r, fmt.Errorf("--target takes grpc=HOST:PORT,http=HOST:PORT, got %q", part)
		}
	}
	if r.grpc == "" || r.http == "" {
		return r, errors.New("--target needs both grpc=HOST:PORT and http=HOST:PORT")
	}
	return r, nil
}

// clientTLS is the TLS configuration of --tls and --ca-file (nil: none).
func clientTLS(useTLS bool, caFile string) (*tls.Config, error) {
	if !useTLS && caFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file: no PEM certificate in %s", caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// setupTarget prepares a run against a service that is already running:
// Keys keys are created through its admin API (and 2% of them revoked),
// since the bench cannot reach its database.
func setupTarget(ctx context.Context, cfg Config) (*env, error) {
	t, err := parseTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, log: cfg.Log, target: t}
	e.format, _ = keys.NewFormat(keys.DefaultPrefix)
	e.machine.fill()
	e.machine.Postgres = "unknown (--target)"
	g, err := newGRPC(string(t.grpc), 4)
	if err != nil {
		return nil, err
	}
	defer g.close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	start := time.Now()
	secrets := make([]string, cfg.Keys)
	ids := make([]string, cfg.Keys)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < cfg.Keys; i = int(next.Add(1) - 1) {
				cctx, cancel := context.WithTimeout(actx, 30*time.Second)
				r, err := g.clients[w%len(g.clients)].CreateKey(cctx, &keyservicev1.CreateKeyRequest{
					Name: fmt.Sprintf("keybench-%d", i), Owner: fmt.Sprintf("keybench-owner-%d", i%1000)})
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("creating keys through the admin API (--admin-token?): %w", err)
					}
					mu.Unlock()
					return
				}
				secrets[i], ids[i] = r.GetSecret(), r.GetKey().GetId()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	revoked := max(1, cfg.Keys/50)
	for _, id := range ids[cfg.Keys-revoked:] {
		if _, err := g.clients[0].RevokeKey(actx, &keyservicev1.RevokeKeyRequest{Id: id}); err != nil {
			return nil, fmt.Errorf("revoking keys: %w", err)
		}
	}
	e.useKeys(secrets[:cfg.Keys-revoked], secrets[cfg.Keys-revoked:], 100_000)
	e.log.Info("seeded through the admin API", "keys", cfg.Keys, "revoked", revoked, "took", time.Since(start).Round(time.Millisecond))
	return e, nil
}
