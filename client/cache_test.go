package client_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/client"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/testdb"
)

// waitLive waits for the cache's stream to have caught up.
func waitLive(t testing.TB, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !c.CacheLive() {
		if time.Now().After(deadline) {
			t.Fatal("the cache's stream did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCacheDropsARevokedKeyFromAnyReplica: a key answered once is
// answered from memory; revoked through another replica, it is dropped
// (the NOTIFY reaches the client's replica, whose stream tells the client)
// and the next answer comes from the service: REVOKED.
func TestCacheDropsARevokedKeyFromAnyReplica(t *testing.T) {
	t.Parallel()
	u, _ := testdb.New(t)
	a, b := startReplica(t, u), startReplica(t, u)
	admA, actx := adminOf(t, a)
	adm, _ := adminOf(t, b)
	c := newClient(t, a, client.WithCache(0, 0))
	waitLive(t, c)
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		k := create(t, admA, actx, &keyservicev1.CreateKeyRequest{})
		if res, err := c.Verify(ctx, k.GetSecret()); err != nil || !res.Valid || res.Cached {
			t.Fatalf("first answer: %+v %v, want VALID from the service", res, err)
		}
		if res, err := c.Verify(ctx, k.GetSecret()); err != nil || !res.Valid || !res.Cached {
			t.Fatalf("second answer: valid %v cached %v %v, want VALID from the cache", res.Valid, res.Cached, err)
		}
		before := c.CacheLen()
		revoked := time.Now()
		if _, err := adm.RevokeKey(actx, &keyservicev1.RevokeKeyRequest{Id: k.GetKey().GetId()}); err != nil {
			t.Fatal(err)
		}
		for c.CacheLen() == before {
			if time.Since(revoked) > 10*time.Second {
				t.Fatal("the revocation never reached the cache")
			}
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(revoked))
		if res, err := c.Verify(ctx, k.GetSecret()); err != nil || res.Valid || res.Cached || res.Code != keyservicev1.Code_CODE_REVOKED {
			t.Fatalf("after the revocation: %+v %v, want REVOKED from the service", res, err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("revoke on replica b (returned) to the entry gone from a client of replica a: median %v, max %v over %d keys", lat[len(lat)/2], lat[len(lat)-1], len(lat))
}

// TestCacheStopsAnsweringWhenItsStreamIsDown: the replica stops; within
// the bound the cache stops answering and calls go to the service (which
// cannot answer: an error, never a cached VALID).
func TestCacheStopsAnsweringWhenItsStreamIsDown(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	c := newClient(t, r, client.WithCache(300*time.Millisecond, 0), client.WithTimeout(time.Second), client.WithRetries(0))
	waitLive(t, c)
	k := create(t, adm, actx, &keyservicev1.CreateKeyRequest{})
	ctx := context.Background()
	waitCached(t, c, k.GetSecret())
	r.stop()
	deadline := time.Now().Add(5 * time.Second)
	for c.CacheLive() {
		if time.Now().After(deadline) {
			t.Fatal("the cache still answers 5 s after its stream went down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res, err := c.Verify(ctx, k.GetSecret()); err == nil || res.Valid {
		t.Fatalf("with the stream down past the bound: %+v %v, want an error from the service", res, err)
	}
}

// TestCacheKeepsOnlyWhatTheServiceMarks: a key with a limit of its own
// is never answered from the cache, so its limit still holds.
func TestCacheKeepsOnlyWhatTheServiceMarks(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	c := newClient(t, r, client.WithCache(0, 0))
	waitLive(t, c)
	k := create(t, adm, actx, &keyservicev1.CreateKeyRequest{RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}})
	ctx := context.Background()
	first, err := c.Verify(ctx, k.GetSecret())
	if err != nil || !first.Valid || first.Response.GetCacheable() {
		t.Fatalf("first: %+v %v, want VALID and not cacheable", first, err)
	}
	second, err := c.Verify(ctx, k.GetSecret())
	if err != nil || second.Cached || second.Code != keyservicev1.Code_CODE_RATE_LIMITED {
		t.Fatalf("second: %+v %v, want RATE_LIMITED from the service", second, err)
	}
	plain := create(t, adm, actx, &keyservicev1.CreateKeyRequest{Scopes: []string{"read"}})
	c.Verify(ctx, plain.GetSecret())
	if res, _ := c.Verify(ctx, plain.GetSecret(), client.WithScopes("read")); !res.Cached || !res.Valid {
		t.Fatal("a scope the cached key holds is not answered from the cache")
	}
	if res, _ := c.Verify(ctx, plain.GetSecret(), client.WithCost(0), client.FromAddress("192.0.2.7")); !res.Cached || !res.Valid {
		t.Fatal("a cost or an address, which decide nothing for a cacheable key, kept the answer from the cache")
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = "read"
	}
	if res, err := c.Verify(ctx, plain.GetSecret(), client.WithScopes(many...)); res.Cached || status.Code(err) != codes.InvalidArgument {
		t.Fatalf("65 required scopes: %+v %v, want INVALID_ARGUMENT from the service, not a cached answer", res, err)
	}
	if res, _ := c.Verify(ctx, plain.GetSecret(), client.WithScopes("write")); res.Cached || res.Code != keyservicev1.Code_CODE_INSUFFICIENT_SCOPE {
		t.Fatalf("a scope the key lacks: %+v, want INSUFFICIENT_SCOPE from the service", res)
	}
}

// TestWatchResumesWithoutMissingAnEvent: a stream resumed from its cursor
// gets the events made while it was away (over gRPC), then a heartbeat;
// an unknown cursor starts with a resync; REST streams the same events as
// lines of JSON.
func TestWatchResumesWithoutMissingAnEvent(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	ctx, cancel := context.WithCancel(actx)
	s, err := adm.WatchKeyEvents(ctx, &keyservicev1.WatchKeyEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Recv()
	if err != nil || first.GetKind() != keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT || first.GetCursor() == "" {
		t.Fatalf("first message: %v %v", first, err)
	}
	cancel()
	k1 := create(t, adm, actx, &keyservicev1.CreateKeyRequest{})
	k2 := create(t, adm, actx, &keyservicev1.CreateKeyRequest{})
	if _, err := adm.RevokeKey(actx, &keyservicev1.RevokeKeyRequest{Id: k1.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	prefix := func(secret string) []byte { h := sha256.Sum256([]byte(secret)); return h[:8] }
	want := []struct {
		kind   keyservicev1.KeyEventKind
		prefix []byte
	}{
		{keyservicev1.KeyEventKind_KEY_EVENT_KIND_CREATED, prefix(k1.GetSecret())},
		{keyservicev1.KeyEventKind_KEY_EVENT_KIND_CREATED, prefix(k2.GetSecret())},
		{keyservicev1.KeyEventKind_KEY_EVENT_KIND_REVOKED, prefix(k1.GetSecret())},
		{keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT, nil},
	}
	ctx2, cancel2 := context.WithCancel(actx)
	defer cancel2()
	s2, err := adm.WatchKeyEvents(ctx2, &keyservicev1.WatchKeyEventsRequest{Cursor: first.GetCursor()})
	if err != nil {
		t.Fatal(err)
	}
	// Every change made while away, in order, then the heartbeat that says
	// the stream has caught up. (The same change may come twice: from the
	// write and from the sync; a keyspace event from the LISTEN
	// connection's catch-up may come at any time.)
	var got []string
	for {
		ev, err := s2.Recv()
		if err != nil {
			t.Fatalf("resumed stream: %v (after %v)", err, got)
		}
		if ev.GetKind() == keyservicev1.KeyEventKind_KEY_EVENT_KIND_TENANCY {
			continue
		}
		got = append(got, fmt.Sprintf("%v %x", ev.GetKind(), ev.GetKeyHashPrefix()))
		if ev.GetKind() == keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT {
			break
		}
	}
	got = slices.Compact(got)
	var wantS []string
	for _, w := range want {
		wantS = append(wantS, fmt.Sprintf("%v %x", w.kind, w.prefix))
	}
	if !slices.Equal(got, wantS) {
		t.Fatalf("resumed stream:\n got %q\nwant %q", got, wantS)
	}

	s3, err := adm.WatchKeyEvents(ctx2, &keyservicev1.WatchKeyEventsRequest{Cursor: "another-replica.12"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s3.Recv(); err != nil || ev.GetKind() != keyservicev1.KeyEventKind_KEY_EVENT_KIND_RESYNC {
		t.Fatalf("an unknown cursor: %v %v, want a resync", ev, err)
	}
	s4, err := adm.WatchKeyEvents(ctx2, &keyservicev1.WatchKeyEventsRequest{Heartbeat: durationpb.New(time.Millisecond)})
	if err == nil {
		_, err = s4.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a heartbeat of 1ms: %v, want INVALID_ARGUMENT", err)
	}

	// REST: the same events from the same cursor, one JSON line each.
	req, _ := http.NewRequestWithContext(ctx2, http.MethodGet, "http://"+r.srv.HTTPAddr().String()+"/v1/key-events?cursor="+first.GetCursor(), nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("REST: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	var lineGot []string
	for lines.Scan() {
		var line struct {
			Result struct {
				Kind          string `json:"kind"`
				KeyHashPrefix []byte `json:"key_hash_prefix"`
			} `json:"result"`
		}
		if err := json.Unmarshal(lines.Bytes(), &line); err != nil {
			t.Fatalf("REST line %s: %v", lines.Bytes(), err)
		}
		if line.Result.Kind == "KEY_EVENT_KIND_TENANCY" {
			continue
		}
		lineGot = append(lineGot, fmt.Sprintf("%s %x", line.Result.Kind, line.Result.KeyHashPrefix))
		if line.Result.Kind == "KEY_EVENT_KIND_HEARTBEAT" {
			break
		}
	}
	if lineGot = slices.Compact(lineGot); !slices.Equal(lineGot, wantS) {
		t.Fatalf("REST stream:\n got %q\nwant %q", lineGot, wantS)
	}
	bad, _ := http.NewRequest(http.MethodGet, "http://"+r.srv.HTTPAddr().String()+"/v1/key-events?heartbeat=1ms", nil)
	bad.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(bad); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("REST heartbeat of 1ms: %v %v, want 400", resp.StatusCode, err)
	}
}

// BenchmarkVerifyCacheHit is a Verify answered from the cache (target:
// ≤ 1 µs, 0 allocations); BenchmarkVerifyService the same Verify asked of
// the service over loopback, the baseline measured in the same run.
func BenchmarkVerifyCacheHit(b *testing.B) {
	c, secret := benchSetup(b, true)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res, err := c.Verify(ctx, secret); err != nil || !res.Cached {
			b.Fatal("not from the cache")
		}
	}
}

func BenchmarkVerifyService(b *testing.B) {
	c, secret := benchSetup(b, false)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res, err := c.Verify(ctx, secret, client.WithCost(0)); err != nil || !res.Valid {
			b.Fatal(res.Code, err)
		}
	}
}

func benchSetup(b *testing.B, cached bool) (*client.Client, string) {
	u, _ := testdb.New(b)
	r := startReplica(b, u, func(c *config.Config) { c.CallerRate = 1e9 })
	adm, actx := adminOf(b, r)
	k, err := adm.CreateKey(actx, &keyservicev1.CreateKeyRequest{Name: "bench", Owner: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	var opts []client.Option
	if cached {
		opts = append(opts, client.WithCache(time.Minute, time.Hour))
	}
	c, err := client.New(r.srv.GRPCAddr().String(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if cached {
		waitLive(b, c)
	}
	c.Verify(context.Background(), k.GetSecret())
	return c, k.GetSecret()
}

// TestCacheDropsWhenAnOwnerGetsABudget: a key cached while its owner had
// no budget is dropped when the owner gets one (the registry's read of
// the owners publishes a tenancy event), so the owner's limit holds.
func TestCacheDropsWhenAnOwnerGetsABudget(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	c := newClient(t, r, client.WithCache(0, 0))
	waitLive(t, c)
	k := create(t, adm, actx, &keyservicev1.CreateKeyRequest{Owner: "acme-budget"})
	ctx := context.Background()
	waitCached(t, c, k.GetSecret())
	if _, err := adm.CreateOwner(actx, &keyservicev1.CreateOwnerRequest{Owner: &keyservicev1.Owner{Name: "acme-budget",
		RateLimit: &keyservicev1.RateLimit{Limit: 1, Period: durationpb.New(time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.CacheLen() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the owner's new budget never dropped the cached answer")
		}
		time.Sleep(time.Millisecond)
	}
	first, err := c.Verify(ctx, k.GetSecret())
	if err != nil || first.Cached || !first.Valid || first.Response.GetCacheable() {
		t.Fatalf("after the owner's budget: %+v %v, want VALID from the service, not cacheable", first, err)
	}
	if second, _ := c.Verify(ctx, k.GetSecret()); second.Cached || second.Code != keyservicev1.Code_CODE_RATE_LIMITED {
		t.Fatalf("the owner's limit of 1: %+v, want RATE_LIMITED", second)
	}
}

// waitCached asks until the answer for secret comes from the cache: an
// answer is kept only when no event crossed it, and the key's own creation
// event may reach the stream while the first call is out.
func waitCached(t *testing.T, c *client.Client, secret string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if res, _ := c.Verify(context.Background(), secret); res.Cached {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("never answered from the cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
