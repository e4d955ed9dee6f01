package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/testdb"
)

// TestWatchOfABoundCredential: a caller bound to keyspace A hears of A's
// keys, not of B's (whose keyspace the replica knows: its own writes and
// what its sync finds), keeps getting
// heartbeats while B's changes flow, and its stream ends with
// UNAUTHENTICATED soon after its credential is revoked, events flowing or
// not.
func TestWatchOfABoundCredential(t *testing.T) {
	t.Parallel()
	// A fast sync: one that runs between a creation's commit and its
	// applying finds the key before this replica holds its record; the
	// sync's rows carry its keyspace, so it is still filtered.
	u, _ := testdb.New(t)
	r := startReplica(t, u, func(c *config.Config) { c.SyncInterval = 20 * time.Millisecond })
	adm, actx := adminOf(t, r)
	for _, ks := range []*keyservicev1.Keyspace{{Name: "wa", Prefix: "wa"}, {Name: "wb", Prefix: "wb"}} {
		if _, err := adm.CreateKeyspace(actx, &keyservicev1.CreateKeyspaceRequest{Keyspace: ks}); err != nil {
			t.Fatal(err)
		}
	}
	cred, err := adm.CreateCredential(actx, &keyservicev1.CreateCredentialRequest{Name: "watcher-a", Permissions: []string{"keys.validate"}, Keyspaces: []string{"wa"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s keyservicev1.KeyService_WatchKeyEventsClient
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		// Until this replica has read the new credential.
		s, err = adm.WatchKeyEvents(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cred.GetSecret()),
			&keyservicev1.WatchKeyEventsRequest{Heartbeat: durationpb.New(200 * time.Millisecond)})
		if err == nil {
			if _, err = s.Recv(); err == nil {
				break
			}
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the bound credential cannot watch: %v", err)
		}
	}
	churn, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for churn.Err() == nil {
			adm.CreateKey(actx, &keyservicev1.CreateKeyRequest{Name: "b", Owner: "b", Keyspace: "wb"})
			time.Sleep(30 * time.Millisecond)
		}
	}()
	beats := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		ev, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch ev.GetKind() {
		case keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT:
			beats++
		case keyservicev1.KeyEventKind_KEY_EVENT_KIND_CREATED:
			t.Fatal("a watcher of keyspace wa heard of a key created in wb")
		}
	}
	if beats < 2 {
		t.Fatalf("%d heartbeats in a second of another keyspace's changes at 200ms, want them to keep coming", beats)
	}
	stop()
	if _, err := adm.CreateKey(actx, &keyservicev1.CreateKeyRequest{Name: "a", Owner: "a", Keyspace: "wa"}); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for the creation in wa: %v", err)
		}
		if ev.GetKind() == keyservicev1.KeyEventKind_KEY_EVENT_KIND_CREATED {
			break
		}
	}
	if _, err := adm.RevokeCredential(actx, &keyservicev1.RevokeCredentialRequest{Id: cred.GetCredential().GetId()}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := s.Recv()
		if err == nil {
			if time.Since(revoked) > 5*time.Second {
				t.Fatal("the stream of a revoked credential still runs 5 s later")
			}
			continue
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("the stream of a revoked credential ended with %v, want UNAUTHENTICATED", err)
		}
		break
	}
}

// TestRESTStreamsCountWithGRPCs: one address holds at most 16 streams,
// over REST as over gRPC.
func TestRESTStreamsCountWithGRPCs(t *testing.T) {
	t.Parallel()
	r := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.srv.HTTPAddr().String()+"/v1/key-events", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
		}
		return resp.StatusCode
	}
	for i := 0; i < 16; i++ {
		if code := open(); code != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, code)
		}
	}
	if code := open(); code != http.StatusTooManyRequests {
		t.Fatalf("the 17th stream from one address: %d, want 429", code)
	}
}
