package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// endpoint is a keyservice to load: one this process runs
// (*server.Server), or one running elsewhere (--target).
type endpoint interface {
	GRPCAddr() net.Addr
	HTTPAddr() net.Addr
}

// remote is a service named by --target.
type remote struct{ grpc, http hostPort }

func (r remote) GRPCAddr() net.Addr { return r.grpc }
func (r remote) HTTPAddr() net.Addr { return r.http }

type hostPort string

func (h hostPort) Network() string { return "tcp" }
func (h hostPort) String() string  { return string(h) }

// The client side of a run (one run per process): TLS to the service
// (--tls, --ca-file; nil: plaintext) and the admin token (--admin-token).
var (
	dialTLS    *tls.Config
	adminToken = benchAdminToken
)

func httpScheme() string {
	if dialTLS != nil {
		return "https://"
	}
	return "http://"
}

// validator is one transport's client.
type validator interface {
	validate(ctx context.Context, worker int, key string) (code string, err error)
	close()
}

type grpcValidator struct {
	conns   []*grpc.ClientConn
	clients []keyservicev1.KeyServiceClient
}

func newGRPC(addr string, n int) (*grpcValidator, error) {
	g := &grpcValidator{}
	for i := 0; i < n; i++ {
		creds := insecure.NewCredentials()
		if dialTLS != nil {
			creds = credentials.NewTLS(dialTLS)
		}
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			g.close()
			return nil, err
		}
		g.conns = append(g.conns, c)
		g.clients = append(g.clients, keyservicev1.NewKeyServiceClient(c))
	}
	return g, nil
}

func (g *grpcValidator) validate(ctx context.Context, w int, key string) (string, error) {
	r, err := g.clients[w%len(g.clients)].Validate(ctx, &keyservicev1.ValidateRequest{Key: key})
	if err != nil {
		return "", err
	}
	return r.GetCode().String(), nil
}

func (g *grpcValidator) close() {
	for _, c := range g.conns {
		c.Close()
	}
}

type restValidator struct {
	client *http.Client
	url    string
}

func newREST(addr string, conns int) *restValidator {
	return &restValidator{
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute, TLSClientConfig: dialTLS}},
		url:    httpScheme() + addr + "/v1/keys:validate",
	}
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (r *restValidator) validate(ctx context.Context, _ int, key string) (string, error) {
	b := bodyPool.Get().(*bytes.Buffer)
	b.Reset()
	b.WriteString(`{"key":"`)
	b.WriteString(key) // bench keys hold no quote or backslash
	b.WriteString(`"}`)
	req, _ := http.NewRequestWithContext(ctx, "POST", r.url, bytes.NewReader(b.Bytes()))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	bodyPool.Put(b)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		// An error body (gateway.RESTError): keep who refused, for refusalBy.
		var body struct{ Status, Message string }
		if json.Unmarshal(raw, &body) != nil && body.Message == "" { // not ours: a balancer's page, say
			body.Message = string(raw[:min(len(raw), 200)])
		}
		return "", &restRefusal{httpStatus: resp.StatusCode, name: body.Status, msg: body.Message}
	}
	return codeOf(raw)
}

// codeOf finds "code":"…" in a Validate answer without decoding all of it,
// so the load generator's own JSON work does not weigh on the REST numbers.
func codeOf(raw []byte) (string, error) {
	const marker = `"code":"`
	i := bytes.Index(raw, []byte(marker))
	if i < 0 {
		return "", fmt.Errorf("no code in answer %q", raw)
	}
	rest := raw[i+len(marker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", fmt.Errorf("no code in answer %q", raw)
	}
	return string(rest[:j]), nil
}

func (r *restValidator) close() { r.client.CloseIdleConnections() }

// newValidateClient is a client of the Validate RPC over transport (the
// load's caller), not a validator.
func newValidateClient(transport string, s endpoint, cfg Config) (validator, error) {
	if transport == "rest" {
		// HTTP/1.1 carries one call per connection at a time: one per worker.
		return newREST(s.HTTPAddr().String(), max(cfg.Conns, cfg.Workers)), nil
	}
	return newGRPC(s.GRPCAddr().String(), cfg.Conns)
}

// pollUntil calls Validate on g until it answers want, or 10 s pass.
func pollUntil(ctx context.Context, g *grpcValidator, key, want string, requiredScopes ...string) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		r, err := g.clients[0].Validate(ctx, &keyservicev1.ValidateRequest{Key: key, RequiredScopes: requiredScopes})
		if err == nil && r.GetCode().String() == want {
			return time.Since(start), true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Since(start), false
}

func latency(d []time.Duration) LatencyMS {
	s := summarise(d)
	return LatencyMS{P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99), Max: ms(s.Max)}
}
