package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/netdelay"
	"github.com/keyservice/keyservice/internal/testdb"
)

// TestColdBurstIsAnsweredOverBothTransports: just after a (re)start, with
// the database a millisecond away, 750 first-seen valid keys over gRPC and
// 750 over REST, 64 callers at a time, are every one answered VALID (none
// refused for want of a lookup slot), and an admin CreateKey made during
// the burst succeeds.
func TestColdBurstIsAnsweredOverBothTransports(t *testing.T) {
	u, _ := testdb.New(t)
	secrets := seedKeys(t, u, 1500)
	pu, _ := url.Parse(u)
	p, err := netdelay.Start(pu.Host, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	pu.Host = p.Addr()
	e := startOn(t, pu.String(), withConfig(func(c *config.Config) {
		c.CallerRate, c.CallerBurst = 1e6, 1e6 // one address sends the whole burst
		// Bookkeeping is what this test is about: a deadline generous enough
		// that the race detector on 2 shared cores cannot decide the result.
		c.LookupTimeout = 10 * time.Second
	}))
	e.waitReady(t)

	var adminErr error
	var wg sync.WaitGroup
	intoBurst := make(chan struct{}) // closed once 64 burst calls were answered
	var answered atomic.Int64
	onAnswer := func() {
		if answered.Add(1) == 64 {
			close(intoBurst)
		}
	}
	wg.Go(func() {
		<-intoBurst
		_, adminErr = e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "during", Owner: "acme"})
	})
	wg.Go(func() { validateAll(t, "grpc", secrets[:750], e.validateGRPC, onAnswer) })
	wg.Go(func() { validateAll(t, "rest", secrets[750:], e.validateREST, onAnswer) })
	wg.Wait()
	if adminErr != nil {
		t.Fatalf("CreateKey during the cold burst: %v", adminErr)
	}
}

// seedKeys stores n active keys straight into the database at u (as an
// import would: no replica has seen them) and returns their secrets.
func seedKeys(t *testing.T, u string, n int) []string {
	t.Helper()
	f, _ := keys.NewFormat(keys.DefaultPrefix)
	secrets := make([]string, n)
	rows := make([][]any, n)
	for i := range rows {
		g, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		secrets[i] = g.Secret
		rows[i] = []any{g.Hash[:], g.Hint, "cold", "acme"}
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.CopyFrom(context.Background(), pgx.Identifier{"api_keys"}, []string{"key_hash", "hint", "name", "owner"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	return secrets
}

// validateGRPC and validateREST answer a key's code, or an error for a
// call that got no answer (a refusal such as UNAVAILABLE or 503).
func (e *env) validateGRPC(key string) (string, error) {
	r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: key})
	return r.GetCode().String(), err
}

func (e *env) validateREST(key string) (string, error) {
	resp, err := e.http.Post(e.base+"/v1/keys:validate", "application/json", strings.NewReader(fmt.Sprintf(`{"key":%q}`, key)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var out struct{ Code string }
	err = json.Unmarshal(raw, &out)
	return out.Code, err
}

// validateAll validates each of keys once through call, 32 callers at a
// time, calling onAnswer after each answer, and fails t unless every key
// was answered VALID (none refused).
func validateAll(t *testing.T, name string, keys []string, call func(string) (string, error), onAnswer func()) {
	var next, valid, refused atomic.Int64
	var firstErr atomic.Value
	var inner sync.WaitGroup
	for w := 0; w < 32; w++ {
		inner.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(keys)); i = next.Add(1) - 1 {
				code, err := call(keys[i])
				onAnswer()
				switch {
				case err != nil:
					refused.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case code == "CODE_VALID":
					valid.Add(1)
				}
			}
		})
	}
	inner.Wait()
	if refused.Load() != 0 || valid.Load() != int64(len(keys)) {
		t.Errorf("%s: %d of %d first-seen valid keys answered VALID, %d refused (first: %v)",
			name, valid.Load(), len(keys), refused.Load(), firstErr.Load())
	}
}
