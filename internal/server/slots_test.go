package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/testdb"
)

// TestFullConnectionTableRefusesNoValidKey is issue 28's measurement: three
// replicas on a PostgreSQL with max_connections=30, the last started when
// only two slots were left, every slot the replicas left taken, then a
// burst of first-seen valid keys at 32 callers on each replica, over gRPC and REST. Every key is answered VALID (the lookups run on the connections
// each replica opened at start and wait for them rather than fail), an
// admin CreateKey made during the burst succeeds, /readyz stays ready, and
// no refusal writes a log line of its own.
func TestFullConnectionTableRefusesNoValidKey(t *testing.T) {
	server := testdb.PrivateCluster(t, map[string]string{"max_connections": "30", "superuser_reserved_connections": "0"})
	u, setup := testdb.NewOn(t, server)
	setup.Close()
	const replicas, perReplica = 3, 300
	secrets := seedKeys(t, u, replicas*perReplica)

	start := func() *env {
		e := startOn(t, u, withConfig(func(c *config.Config) {
			c.CallerRate, c.CallerBurst = 1e6, 1e6 // one address sends the whole burst
			c.DBMaxConns, c.LookupConcurrency = 8, 3
			// Filter mode: first-seen keys need lookups, which need the
			// connections this test takes away (memory mode would answer
			// them without any).
			c.MemoryBudgetMiB = 0
			// Generous, so the race detector on 2 shared cores cannot decide
			// the result: what is tested is that nothing is refused at once.
			c.LookupTimeout = 10 * time.Second
			c.DBAcquireTimeout = 10 * time.Second
		}))
		e.waitReady(t)
		return e
	}
	envs := make([]*env, replicas)
	for i := range envs[:replicas-1] {
		envs[i] = start()
	}
	// Each replica opens its lookups' connections plus one at start.
	for _, e := range envs[:replicas-1] {
		waitFor(t, func() bool { return metricValue(t, e, "keyservice_db_pool_conns") >= 4 })
	}
	// The fleet grows by one replica when only two slots are left: its
	// LISTEN connection and one pooled connection are all it gets.
	testdb.FillServer(t, u, 2)
	envs[replicas-1] = start()
	testdb.FillServer(t, u, 0)
	var adminErr error
	var wg sync.WaitGroup
	intoBurst := make(chan struct{})
	var answered atomic.Int64
	onAnswer := func() {
		if answered.Add(1) == 64 {
			close(intoBurst)
		}
	}
	wg.Go(func() {
		<-intoBurst
		_, adminErr = envs[0].grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "during", Owner: "acme"})
	})
	for r, e := range envs {
		// Half of each replica's keys over gRPC, half over REST.
		keys := secrets[r*perReplica : (r+1)*perReplica]
		wg.Go(func() {
			validateAll(t, fmt.Sprintf("replica %d, gRPC", r), keys[:perReplica/2], e.validateGRPC, onAnswer)
		})
		wg.Go(func() {
			validateAll(t, fmt.Sprintf("replica %d, REST", r), keys[perReplica/2:], e.validateREST, onAnswer)
		})
	}
	wg.Wait()
	if adminErr != nil {
		t.Errorf("CreateKey during the burst with the connection table full: %v", adminErr)
	}
	// The late replica answered on its one pooled connection: it waited,
	// and says so while the server stays full.
	late := envs[replicas-1]
	if n := metricValue(t, late, "keyservice_db_slot_waits_total"); n == 0 {
		t.Error("the replica started with two slots left never waited for its open connections")
	}
	if code, body, _ := late.rest(t, "GET", "/readyz", "", ""); code != 200 || body["status"] != "ready" || body["pool"] == nil {
		t.Errorf("late replica: /readyz %d %v while the server is full, want 200 ready with a pool detail", code, body)
	}
	for r, e := range envs {
		code, body, _ := e.rest(t, "GET", "/readyz", "", "")
		if code != 200 || body["status"] != "ready" {
			t.Errorf("replica %d: /readyz %d %v during the episode, want 200 ready", r, code, body)
		}
		t.Logf("replica %d: %v connections open, %v slot waits, %v slot refusals", r, metricValue(t, e, "keyservice_db_pool_conns"),
			metricValue(t, e, "keyservice_db_slot_waits_total"), metricValue(t, e, "keyservice_db_slot_refusals_total"))
		logs := e.logs.String()
		if n := strings.Count(logs, "store unavailable"); n != 0 {
			t.Errorf("replica %d: %d per-call 'store unavailable' lines", r, n)
		}
		// At most: started, one report, ended.
		if n := strings.Count(logs, "database connection slots"); n > 3 {
			t.Errorf("replica %d: %d episode lines, want at most 3", r, n)
		}
	}
}
