package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/config"
)

// The load generator of BenchmarkServerCPUPerCall runs in a child process
// (this test binary again), so the parent's CPU time is the server's alone.
const (
	loadgenEnv     = "KEYSERVICE_TEST_LOADGEN"
	loadgenAddrEnv = "KEYSERVICE_TEST_LOADGEN_ADDR"
)

// runLoadgen calls KEYSERVICE_TEST_LOADGEN_ADDR with 32 workers until
// KEYSERVICE_TEST_LOADGEN_CALLS calls are made: a grpc.health.v1 Check, or
// Validate of KEYSERVICE_TEST_LOADGEN_KEY.
func runLoadgen() int {
	addr, key := os.Getenv(loadgenAddrEnv), os.Getenv("KEYSERVICE_TEST_LOADGEN_KEY")
	calls, _ := strconv.ParseInt(os.Getenv("KEYSERVICE_TEST_LOADGEN_CALLS"), 10, 64)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	health, ks := healthpb.NewHealthClient(conn), keyservicev1.NewKeyServiceClient(conn)
	method := os.Getenv(loadgenEnv)
	// HTTP methods: one keep-alive connection per worker, as a proxy has.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	body := `{"key":"` + key + `"}`
	httpCall := func() error {
		var req *http.Request
		switch method {
		case "rest":
			req, _ = http.NewRequest("POST", "http://"+addr+"/v1/keys:validate", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		case "auth":
			req, _ = http.NewRequest("GET", "http://"+addr+"/v1/auth", nil)
			req.Header.Set("Authorization", "Bearer "+key)
		default: // bare
			req, _ = http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", method, resp.StatusCode)
		}
		return nil
	}
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Go(func() {
			for next.Add(1) <= calls {
				var err error
				switch method {
				case "rest", "auth", "bare":
					err = httpCall()
				case "health":
					_, err = health.Check(context.Background(), &healthpb.HealthCheckRequest{})
				default:
					var r *keyservicev1.ValidateResponse
					r, err = ks.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: key})
					if err == nil && !r.GetValid() {
						err = fmt.Errorf("answer %v", r.GetCode())
					}
				}
				if err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "%d calls failed\n", n)
		return 1
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServerCPUPerCall is the server's CPU time and heap allocations
// per call (user + system and mallocs, of this process only: the load
// comes from a child process), for
//
//   - gRPC: a grpc.health.v1 Check, the cheapest call the server answers,
//     and Validate of a key in memory ("validate-x-health": the second over
//     the first; "validate-allocs-over-health": the difference);
//   - HTTP: a bare net/http handler answering 200 with two headers (the
//     floor of any HTTP answer), REST POST /v1/keys:validate and
//     forward-auth GET /v1/auth, each over the bare handler.
//
// Run it with -benchtime Nx (N calls per method), e.g. -benchtime 100000x.
func BenchmarkServerCPUPerCall(b *testing.B) {
	e := start(b, withConfig(func(c *config.Config) {
		c.CallerRate, c.CallerBurst, c.KeyRate = 1e9, 1<<30, apikey.RateLimit{Limit: 1_000_000_000, Period: time.Second}
		c.LogLevel = slog.LevelError
	}))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "cpu", Owner: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	// The bare handler: what any Go HTTP server spends to answer.
	bareLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Key-Id", "01234567-89ab-cdef-0123-456789abcdef")
		w.Header().Set("X-Key-Owner", "acme")
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = bare.Serve(bareLis) }()
	defer bare.Close()
	type cost struct {
		cpu    time.Duration
		allocs float64
	}
	measure := func(method string, calls int) cost {
		addr := e.srv.GRPCAddr().String()
		switch method {
		case "rest", "auth":
			addr = e.srv.HTTPAddr().String()
		case "bare":
			addr = bareLis.Addr().String()
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), loadgenEnv+"="+method,
			loadgenAddrEnv+"="+addr,
			"KEYSERVICE_TEST_LOADGEN_KEY="+created.GetSecret(),
			"KEYSERVICE_TEST_LOADGEN_CALLS="+strconv.Itoa(calls))
		cmd.Stderr = os.Stderr
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		before := cpuTime()
		if err := cmd.Run(); err != nil {
			b.Fatalf("load generator (%s): %v", method, err)
		}
		c := cost{cpu: (cpuTime() - before) / time.Duration(calls)}
		runtime.ReadMemStats(&m1)
		c.allocs = float64(m1.Mallocs-m0.Mallocs) / float64(calls)
		return c
	}
	methods := []string{"health", "validate", "bare", "rest", "auth"}
	for _, m := range methods {
		measure(m, 2000) // warm up every path and the connection handling
	}
	b.ResetTimer()
	got := map[string]cost{}
	for _, m := range methods {
		got[m] = measure(m, b.N)
	}
	b.StopTimer()
	for _, m := range methods {
		b.ReportMetric(float64(got[m].cpu.Nanoseconds()), m+"-cpu-ns/call")
		b.ReportMetric(got[m].allocs, m+"-allocs/call")
	}
	b.ReportMetric(float64(got["validate"].cpu)/float64(got["health"].cpu), "validate-x-health")
	b.ReportMetric(got["validate"].allocs-got["health"].allocs, "validate-allocs-over-health")
	b.ReportMetric(float64(got["rest"].cpu)/float64(got["bare"].cpu), "rest-x-bare")
	b.ReportMetric(float64(got["auth"].cpu)/float64(got["bare"].cpu), "auth-x-bare")
}
