package server_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/pglocal"
	"github.com/keyservice/keyservice/internal/testdb"
)

// onPort is u with its port replaced (the same database on another
// server).
func onPort(t *testing.T, u string, port int) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = fmt.Sprintf("127.0.0.1:%d", port)
	return p.String()
}

// execOn runs one statement on the server of u.
func execOn(t *testing.T, u, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// replicatedDB is a fresh, migrated database on a private primary, and its
// URL on the primary's streaming standby once the standby has it.
func replicatedDB(t *testing.T) (primaryURL, standbyURL string, primary, standby *pglocal.Cluster) {
	t.Helper()
	primary, standby = testdb.Replicated(t)
	primaryURL, _ = testdb.NewOn(t, primary.URL("postgres"))
	standbyURL = onPort(t, primaryURL, standby.Port())
	waitFor(t, func() bool { // the database, replayed
		conn, err := pgx.Connect(context.Background(), standbyURL)
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		var n int
		return conn.QueryRow(context.Background(), "SELECT count(*) FROM api_keys").Scan(&n) == nil
	})
	return primaryURL, standbyURL, primary, standby
}

// Replica lag changes no answer: two replicas read a streaming standby
// (KEYSERVICE_DATABASE_READ_URL) whose replay is paused for 5 s
// (pg_wal_replay_pause) while keys are created and revoked on the
// primary. A key created is VALID on both as soon as they know of it (never
// a NOT_FOUND cached from the standby's older data), a key revoked is
// never VALID again once refused, keys unchanged are still read on the
// standby, and only the changed ones on the primary. In filter mode
// (lookups) and in memory mode (records read from the standby).
func TestReadReplicaLagChangesNoAnswer(t *testing.T) {
	for _, mode := range []struct {
		name   string
		budget int
	}{{"filter", 0}, {"memory", 64}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			pu, su, _, _ := replicatedDB(t)
			reads := withConfig(func(c *config.Config) {
				c.DatabaseReadURL = su
				c.MemoryBudgetMiB = mode.budget
				c.SyncInterval = time.Hour // NOTIFY alone: sync would hide a wrong answer for a while
			})
			a := startOn(t, pu, reads)
			a.waitReady(t)
			b := startOn(t, pu, reads)
			b.waitReady(t)
			replicas := []*env{a, b}

			held, heldKey := createKey(t, a, nil)
			cold := make([]string, 20) // never asked before the lag: read on the standby
			for i := range cold {
				cold[i], _ = createKey(t, a, nil)
			}
			for _, e := range replicas {
				waitFor(t, func() bool { return validateCode(t, e, held) == keyservicev1.Code_CODE_VALID })
				// The standby caught up (every lookup goes to the primary until
				// it is seen caught up once).
				waitFor(t, func() bool {
					_, body, _ := e.rest(t, "GET", "/readyz", "", "")
					return body["read_replica"] == "caught up"
				})
			}

			execOn(t, su, "SELECT pg_wal_replay_pause()")
			lagFrom := time.Now()
			before := map[*env][2]float64{}
			for _, e := range replicas {
				before[e] = [2]float64{
					metricValue(t, e, `keyservice_read_routing_total{kind="lookup",server="primary"}`),
					metricValue(t, e, `keyservice_read_routing_total{kind="lookup",server="replica"}`),
				}
			}

			// Created during the lag: VALID on both, on the first answer after
			// the replica applied the creation.
			fresh, _ := createKey(t, a, nil)
			// On A (which made it) at once; on B as soon as its NOTIFY is
			// applied (a lookup on the standby then would cache NOT_FOUND,
			// which the 5 s below would show).
			if c := validateCode(t, a, fresh); c != keyservicev1.Code_CODE_VALID {
				t.Fatalf("a key created during the lag, on the replica that made it: %v, want VALID", c)
			}
			waitFor(t, func() bool { return validateCode(t, b, fresh) == keyservicev1.Code_CODE_VALID })
			// Revoked during the lag: once refused, never VALID again.
			if _, err := a.grpc.RevokeKey(admin(context.Background()), &keyservicev1.RevokeKeyRequest{Id: heldKey.GetId()}); err != nil {
				t.Fatal(err)
			}
			for _, e := range replicas {
				waitFor(t, func() bool { return validateCode(t, e, held) == keyservicev1.Code_CODE_REVOKED })
			}

			// Until 5 s of lag: every answer right, on both.
			var wrong atomic.Int64
			var wg sync.WaitGroup
			for _, e := range replicas {
				wg.Go(func() {
					for time.Since(lagFrom) < 5*time.Second {
						time.Sleep(10 * time.Millisecond) // within the caller limit
						for secret, want := range map[string]keyservicev1.Code{
							held: keyservicev1.Code_CODE_REVOKED, fresh: keyservicev1.Code_CODE_VALID, cold[0]: keyservicev1.Code_CODE_VALID,
						} {
							if got := validateCode(t, e, secret); got != want {
								t.Errorf("during the lag: %v, want %v", got, want)
								wrong.Add(1)
							}
						}
					}
				})
			}
			for _, secret := range cold {
				for _, e := range replicas {
					if got := validateCode(t, e, secret); got != keyservicev1.Code_CODE_VALID {
						t.Fatalf("a key unchanged during the lag: %v, want VALID", got)
					}
				}
			}
			wg.Wait()
			if wrong.Load() != 0 {
				t.Fatalf("%d wrong answers during the lag", wrong.Load())
			}
			var r struct{ behind string }
			for _, e := range replicas {
				_, body, _ := e.rest(t, "GET", "/readyz", "", "")
				r.behind, _ = body["read_replica"].(string)
				primary := metricValue(t, e, `keyservice_read_routing_total{kind="lookup",server="primary"}`) - before[e][0]
				replica := metricValue(t, e, `keyservice_read_routing_total{kind="lookup",server="replica"}`) - before[e][1]
				t.Logf("during %s of lag: lookups on the primary %v, on the standby %v; readyz: %s", time.Since(lagFrom).Round(time.Millisecond), primary, replica, r.behind)
				if mode.budget == 0 && replica < float64(len(cold))-1 {
					t.Errorf("%v lookups on the standby for %d keys unchanged during the lag (the first of them perhaps cached already): the standby is not read", replica, len(cold))
				}
				// The primary sees the changed keys only: the created one
				// (and memory mode's fetch of its record), the revoked one,
				// each at most a few times (a refresh, a lookup joined late).
				if primary > 6 {
					t.Errorf("%v lookups on the primary during the lag, for 2 changed keys", primary)
				}
			}

			execOn(t, su, "SELECT pg_wal_replay_resume()")
			for _, e := range replicas {
				waitFor(t, func() bool {
					_, body, _ := e.rest(t, "GET", "/readyz", "", "")
					return body["read_replica"] == "caught up"
				})
				if c := validateCode(t, e, held); c != keyservicev1.Code_CODE_REVOKED {
					t.Fatalf("after the lag: %v, want REVOKED", c)
				}
			}
		})
	}
}

// validateCode validates secret on e over gRPC.
func validateCode(t *testing.T, e *env, secret string) keyservicev1.Code {
	t.Helper()
	r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret})
	if err != nil {
		t.Errorf("Validate: %v", err)
		return keyservicev1.Code_CODE_UNSPECIFIED
	}
	return r.GetCode()
}

// Failover on real streaming replication: two replicas on a multi-host
// DATABASE_URL (target_session_attrs=read-write) under load; the primary
// is killed (pg_ctl stop -m immediate) and its standby promoted. The
// replicas report degraded meanwhile and keep answering the keys they
// hold, are ready again soon after the promotion, their LISTEN resumes
// (a key created afterwards reaches the other replica by NOTIFY, sync
// being hourly) and misses nothing (a key created while it reconnects is
// found by its catch-up), and a key revoked before or during the failover
// is never VALID afterwards.
func TestFailoverToAPromotedStandby(t *testing.T) {
	t.Parallel()
	pu, su, primary, standby := replicatedDB(t)
	p, _ := url.Parse(pu)
	multi := fmt.Sprintf("postgres://postgres@%s,127.0.0.1:%d%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		p.Host, standby.Port(), p.Path)
	hourly := withConfig(func(c *config.Config) {
		c.SyncInterval = time.Hour
		c.MemoryBudgetMiB = 0 // filter mode: answers from the caches while no primary answers
	})
	a := startOn(t, multi, hourly)
	a.waitReady(t)
	b := startOn(t, multi, hourly)
	b.waitReady(t)
	replicas := []*env{a, b}

	held, _ := createKey(t, a, nil)
	before, beforeKey := createKey(t, a, nil)
	during, duringKey := createKey(t, a, nil)
	for _, e := range replicas {
		for _, s := range []string{held, before, during} {
			waitFor(t, func() bool { return validateCode(t, e, s) == keyservicev1.Code_CODE_VALID })
		}
	}
	if _, err := a.grpc.RevokeKey(admin(context.Background()), &keyservicev1.RevokeKeyRequest{Id: beforeKey.GetId()}); err != nil {
		t.Fatal(err)
	}
	// The standby has the revocation before the primary dies (replication
	// is asynchronous: see docs/scaling.md on synchronous_standby_names).
	waitFor(t, func() bool {
		conn, err := pgx.Connect(context.Background(), su)
		if err != nil {
			return false
		}
		defer conn.Close(context.Background())
		var revoked bool
		err = conn.QueryRow(context.Background(), "SELECT revoked_at IS NOT NULL FROM api_keys WHERE key_hash = $1", hashBytes(before)).Scan(&revoked)
		return err == nil && revoked
	})
	for _, e := range replicas {
		waitFor(t, func() bool { return validateCode(t, e, before) == keyservicev1.Code_CODE_REVOKED })
	}

	// Load throughout: the held key VALID, the revoked ones never VALID
	// once refused.
	var (
		stop                 = make(chan struct{})
		wg                   sync.WaitGroup
		heldValid, heldOther atomic.Int64
		revokedValid         atomic.Int64 // after a replica refused the key
		duringRevoked        atomic.Bool
		reached              [2]atomic.Int64 // when each replica first refused the key revoked during the failover
	)
	for i, e := range replicas {
		wg.Go(func() {
			refused := false
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if validateCodeQuiet(e, held) == keyservicev1.Code_CODE_VALID {
					heldValid.Add(1)
				} else {
					heldOther.Add(1)
				}
				if validateCodeQuiet(e, before) == keyservicev1.Code_CODE_VALID {
					revokedValid.Add(1)
				}
				if duringRevoked.Load() {
					// A revocation made while this replica's LISTEN is down
					// reaches it by the sync that runs every 250 ms meanwhile;
					// once refused, never VALID again.
					switch c := validateCodeQuiet(e, during); {
					case c == keyservicev1.Code_CODE_REVOKED && !refused:
						refused = true
						reached[i].Store(time.Now().UnixNano())
					case c == keyservicev1.Code_CODE_VALID && refused:
						revokedValid.Add(1)
					}
				}
			}
		})
	}

	ctx := context.Background()
	if err := primary.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range replicas {
		waitFor(t, func() bool {
			_, body, _ := e.rest(t, "GET", "/readyz", "", "")
			return body["status"] == "degraded"
		})
	}
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	// Revoked during the failover: the write retried until the new
	// primary takes it.
	waitFor(t, func() bool {
		_, err := a.grpc.RevokeKey(admin(ctx), &keyservicev1.RevokeKeyRequest{Id: duringKey.GetId()})
		return err == nil
	})
	duringRevoked.Store(true)
	revokedAt := time.Now()
	created, _ := createKey(t, a, nil) // while B's LISTEN may still reconnect
	var readyAfter []time.Duration
	for _, e := range replicas {
		waitFor(t, func() bool {
			_, body, _ := e.rest(t, "GET", "/readyz", "", "")
			return body["status"] == "ready"
		})
		readyAfter = append(readyAfter, time.Since(promoted))
	}
	waitFor(t, func() bool { return validateCode(t, b, created) == keyservicev1.Code_CODE_VALID })
	waitFor(t, func() bool { return validateCode(t, b, during) == keyservicev1.Code_CODE_REVOKED })
	// LISTEN resumed: a key created now reaches B by NOTIFY.
	waitFor(t, func() bool {
		return metricValue(t, b, `keyservice_listen_up`) == 1
	})
	notified := metricValue(t, b, `keyservice_key_events_applied_total{kind="created",source="notify"}`)
	after, _ := createKey(t, a, nil)
	waitFor(t, func() bool {
		return metricValue(t, b, `keyservice_key_events_applied_total{kind="created",source="notify"}`) > notified
	})
	if c := validateCode(t, b, after); c != keyservicev1.Code_CODE_VALID {
		t.Fatalf("a key created after the failover: %v on the other replica, want VALID", c)
	}
	time.Sleep(time.Second) // more load on the new primary
	close(stop)
	wg.Wait()
	var propagation []time.Duration
	for i := range reached {
		propagation = append(propagation, time.Duration(reached[i].Load()-revokedAt.UnixNano()).Round(time.Millisecond))
	}
	t.Logf("ready again %v after the promotion; held key VALID %d times, otherwise %d; revoked keys VALID %d times once refused; the revocation made during the failover refused by each replica %v after it returned",
		readyAfter, heldValid.Load(), heldOther.Load(), revokedValid.Load(), propagation)
	if revokedValid.Load() != 0 {
		t.Fatalf("a key revoked before or during the failover was answered VALID %d times", revokedValid.Load())
	}
	if heldOther.Load() != 0 {
		t.Fatalf("the held key was refused %d times during the failover", heldOther.Load())
	}
}

// validateCodeQuiet is validateCode for a goroutine that reports by count.
func validateCodeQuiet(e *env, secret string) keyservicev1.Code {
	r, err := e.grpc.Validate(context.Background(), &keyservicev1.ValidateRequest{Key: secret})
	if err != nil {
		return keyservicev1.Code_CODE_UNSPECIFIED
	}
	return r.GetCode()
}

func hashBytes(secret string) []byte {
	h := keys.HashOf(secret)
	return h[:]
}
