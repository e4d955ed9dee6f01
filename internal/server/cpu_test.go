package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
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
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Go(func() {
			for next.Add(1) <= calls {
				var err error
				if os.Getenv(loadgenEnv) == "health" {
					_, err = health.Check(context.Background(), &healthpb.HealthCheckRequest{})
				} else {
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

// BenchmarkServerCPUPerCall is the server's CPU time per call (user +
// system, of this process only: the load comes from a child process) for a
// grpc.health.v1 Check, the cheapest call the server answers, and for
// Validate of a key in memory. "x-health" is the second over the first.
// Run it with -benchtime Nx (N calls per method), e.g. -benchtime 200000x.
func BenchmarkServerCPUPerCall(b *testing.B) {
	e := start(b, withConfig(func(c *config.Config) {
		c.CallerRate, c.CallerBurst, c.KeyRate = 1e9, 1<<30, apikey.RateLimit{Limit: 1_000_000_000, Period: time.Second}
		c.LogLevel = slog.LevelError
	}))
	created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "cpu", Owner: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	measure := func(method string, calls int) time.Duration {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), loadgenEnv+"="+method,
			loadgenAddrEnv+"="+e.srv.GRPCAddr().String(),
			"KEYSERVICE_TEST_LOADGEN_KEY="+created.GetSecret(),
			"KEYSERVICE_TEST_LOADGEN_CALLS="+strconv.Itoa(calls))
		cmd.Stderr = os.Stderr
		before := cpuTime()
		if err := cmd.Run(); err != nil {
			b.Fatalf("load generator (%s): %v", method, err)
		}
		return (cpuTime() - before) / time.Duration(calls)
	}
	measure("health", 2000) // warm up both paths and the connection handling
	measure("validate", 2000)
	b.ResetTimer()
	health := measure("health", b.N)
	validate := measure("validate", b.N)
	b.StopTimer()
	b.ReportMetric(float64(health.Nanoseconds()), "health-cpu-ns/call")
	b.ReportMetric(float64(validate.Nanoseconds()), "validate-cpu-ns/call")
	b.ReportMetric(float64(validate)/float64(health), "x-health")
}
