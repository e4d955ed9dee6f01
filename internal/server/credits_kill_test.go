package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/cli"
)

// childEnv, set to "serve", makes this test binary run `keyservice serve`
// (configured by the environment): a replica in its own process, which a
// test can kill with SIGKILL.
const childEnv = "KEYSERVICE_TEST_CHILD"

func runChild() int {
	ctx, stop := signalContext()
	defer stop()
	return cli.Main(ctx, []string{"serve"}, os.Stdout, os.Stderr)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// startProcess runs a replica on dbURL as a child process and waits until
// it is ready; the cleanup kills it if the test has not.
func startProcess(t *testing.T, dbURL string) (*exec.Cmd, keyservicev1.KeyServiceClient) {
	t.Helper()
	grpcAddr, httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=serve", "DATABASE_URL="+dbURL, "KEYSERVICE_GRPC_ADDR="+grpcAddr,
		"KEYSERVICE_HTTP_ADDR="+httpAddr, "KEYSERVICE_ADMIN_TOKENS="+adminToken, "KEYSERVICE_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cmd, keyservicev1.NewKeyServiceClient(conn)
}

// TestCreditsWhenAReplicaIsKilled: three replicas in their own processes,
// 60 callers, one key with 1,000 credits; one replica is killed with
// SIGKILL when about 400 of the credits are spent. Never more than 1,000 VALID; what
// was lost is at most what the killed replica held leased: one lease,
// never more than 1/16 of what remained when it was granted (63 of 1,000).
func TestCreditsWhenAReplicaIsKilled(t *testing.T) {
	t.Parallel()
	a := start(t)
	_, b := startProcess(t, a.dbURL)
	victim, c := startProcess(t, a.dbURL)
	secret, _ := createKey(t, a, &keyservicev1.CreateKeyRequest{Name: "metered", Owner: "acme",
		RateLimit: &keyservicev1.RateLimit{Limit: 1_000_000, Period: durationpb.New(time.Second)},
		Credits:   &keyservicev1.Credits{Remaining: 1000}})
	clients := []keyservicev1.KeyServiceClient{a.grpc, b, c}
	waitKnown(t, clients, secret)
	killed := make(chan struct{})
	got := hammer(t, clients, secret, 4500, func(i int64) {
		if i == 400 { // about 400 of the 1,000 credits spent
			_ = victim.Process.Signal(syscall.SIGKILL)
			close(killed)
		}
	})
	<-killed
	valid := got["VALID"]
	t.Logf("answers with one of three replicas killed: %v", got)
	if valid > 1000 {
		t.Fatalf("%d VALID answers for 1,000 credits: overspent", valid)
	}
	if lost := 1000 - valid; lost > 1000/16+1 {
		t.Fatalf("%d credits lost with the killed replica: more than one lease (at most %d)", lost, 1000/16+1)
	}
	// The survivors answer USAGE_EXCEEDED from then on.
	r, err := a.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret})
	if err != nil || r.GetCode() != keyservicev1.Code_CODE_USAGE_EXCEEDED {
		t.Fatalf("after the run: %v, %v", r, err)
	}
}
