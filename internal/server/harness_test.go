package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/server"
	"github.com/keyservice/keyservice/internal/testdb"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "serve" {
		os.Exit(runChild()) // this binary, re-run as a replica a test may kill
	}
	if os.Getenv(loadgenEnv) != "" && os.Getenv(loadgenAddrEnv) != "" {
		os.Exit(runLoadgen()) // this binary, re-run as BenchmarkServerCPUPerCall's load generator
	}
	testdb.Main(m)
}

const adminToken = "test-admin-token-0123456789"

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a running server on real sockets with its clients.
type env struct {
	dbURL  string
	srv    *server.Server
	grpc   keyservicev1.KeyServiceClient
	conn   *grpc.ClientConn
	base   string // http://host:port
	http   *http.Client
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// option changes the config, or adds a server.Option.
type option struct {
	cfg func(*config.Config)
	srv server.Option
}

func withConfig(f func(*config.Config)) option { return option{cfg: f} }

func withServerOption(o server.Option) option { return option{srv: o} }

// start runs a server on a fresh, migrated database.
func start(t testing.TB, opts ...option) *env {
	t.Helper()
	u, _ := testdb.New(t)
	e := startOn(t, u, opts...)
	e.waitReady(t)
	return e
}

func startOn(t testing.TB, dbURL string, opts ...option) *env {
	t.Helper()
	cfg := config.Defaults()
	cfg.DatabaseURL = dbURL
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdminTokens = []string{adminToken}
	cfg.ReadyInterval = 100 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	var sopts []server.Option
	for _, o := range opts {
		if o.cfg != nil {
			o.cfg(&cfg)
		}
		if o.srv != nil {
			sopts = append(sopts, o.srv)
		}
	}
	logs := &syncBuffer{}
	level := slog.LevelDebug // tests read the logs
	if cfg.LogLevel == slog.LevelError {
		level = slog.LevelError // benchmarks: as quiet as production
	}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log, sopts...)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	e := &env{dbURL: dbURL, srv: srv, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- srv.Serve(ctx) }()
	creds := insecure.NewCredentials()
	e.http = http.DefaultClient
	e.base = "http://" + srv.HTTPAddr().String()
	if cfg.TLSCertFile != "" {
		// Test certificates are signed by the client CA (see tls_test.go).
		pemCA, err := os.ReadFile(cfg.TLSClientCAFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pemCA)
		tc := &tls.Config{RootCAs: roots}
		creds = credentials.NewTLS(tc)
		e.http = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		e.base = "https://" + srv.HTTPAddr().String()
	}
	conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	e.grpc = keyservicev1.NewKeyServiceClient(conn)
	t.Cleanup(func() {
		conn.Close()
		e.stop(t)
	})
	return e
}

func (e *env) stop(t testing.TB) {
	t.Helper()
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
		e.done <- nil // let a second stop return at once
	case <-time.After(30 * time.Second):
		t.Error("server did not stop within 30s")
	}
}

func (e *env) waitReady(t testing.TB) {
	t.Helper()
	select {
	case <-e.srv.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("server not ready after 20s")
	}
}

func admin(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
}

// rest sends a JSON request and decodes the JSON answer into a map.
func (e *env) rest(t *testing.T, method, path, token, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v: %q", method, path, err, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// keyFormatKey returns a well-formed key (default prefix) that was never created.
func keyFormatKey(t *testing.T) (string, error) {
	t.Helper()
	f, err := keys.NewFormat(keys.DefaultPrefix)
	if err != nil {
		return "", err
	}
	g, err := f.Generate()
	return g.Secret, err
}

func newEmptyDatabase(t *testing.T) string { return testdb.NewDatabase(t) }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) queryRow(t *testing.T, sql string, dest ...any) error {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(context.Background(), sql).Scan(dest...)
}

// rawCodec sends and receives raw bytes, to put on the wire what a
// generated Go client refuses to marshal.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// metrics reads the server's /metrics with the Prometheus text parser.
func (e *env) metrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	return e.metricsVia(t, e.http)
}

// metricsVia reads /metrics with client (for example one bound to an
// address of its own, so the scrape is not counted with the test's
// connections).
func (e *env) metricsVia(t *testing.T, client *http.Client) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(e.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return families
}

// sample finds the value of one series, named as Prometheus prints it:
// name{label="value",...} (labels in any order). ok is false when the
// series is not exported.
func sample(families map[string]*dto.MetricFamily, series string) (v float64, ok bool) {
	name, rest, _ := strings.Cut(series, "{")
	want := map[string]string{}
	if rest = strings.TrimSuffix(rest, "}"); rest != "" {
		for _, pair := range strings.Split(rest, ",") {
			k, val, _ := strings.Cut(pair, "=")
			want[k] = strings.Trim(val, `"`)
		}
	}
	for _, m := range families[name].GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// metricValue is the value of one series (0 when it is not exported).
func metricValue(t *testing.T, e *env, series string) float64 {
	t.Helper()
	v, _ := sample(e.metrics(t), series)
	return v
}

// metricSum is a metric summed over all its series (0 when absent).
func metricSum(t *testing.T, e *env, name string) float64 {
	t.Helper()
	var sum float64
	for _, m := range e.metrics(t)[name].GetMetric() {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return sum
}
