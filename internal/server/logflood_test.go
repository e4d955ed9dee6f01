package server_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/loglimit"
)

// logLines are the JSON lines of logs for which match is true, decoded.
func logLines(t *testing.T, logs string, match func(map[string]any) bool) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %s", line)
		}
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// reportedSuppressed sums what written lines say was left out before them.
func reportedSuppressed(lines []map[string]any) (n int) {
	for _, l := range lines {
		if v, ok := l[loglimit.SuppressedKey].(float64); ok {
			n += int(v)
		}
	}
	return n
}

// flood makes n events, each of which would write a line of one kind
// (make makes one and returns how many events have been made, waiting for
// their lines when they are written late; lines are those written so
// far), then more, one at a time, until a written line reports the
// suppressed ones (the first after the budget has refilled: a signal, not
// a sleep). It checks that the lines written are within the limiter's
// budget for the time it took and returns how many events were made and
// lines written.
func flood(t *testing.T, what string, n int, make func() int, lines func() []map[string]any) (sent, written int) {
	t.Helper()
	start := time.Now()
	for sent < n {
		sent = make()
	}
	for reportedSuppressed(lines()) == 0 {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%s: no written line reports suppressed ones after %s", what, time.Since(start))
		}
		sent = make()
	}
	elapsed := time.Since(start)
	got := lines()
	budget := loglimit.Burst + int(elapsed.Seconds()*loglimit.PerSecond) + 1
	t.Logf("%s: %d in %s, %d lines written (budget %d), %d reported suppressed in them",
		what, sent, elapsed.Round(time.Millisecond), len(got), budget, reportedSuppressed(got))
	if len(got) > budget {
		t.Fatalf("%s: %d lines written in %s, more than %d", what, len(got), elapsed, budget)
	}
	if r := reportedSuppressed(got); r > sent-len(got) {
		t.Fatalf("%s: the lines report %d suppressed, more than the %d left out", what, r, sent-len(got))
	}
	return sent, len(got)
}

// TestUnauthenticatedFloodsWriteAFewLinesASecond: 500 badly signed
// secret-scanning posts and 500 admin calls without a token (both over
// real sockets, neither authenticated) write a few lines a second of
// each kind, not one line each (10 s of bad posts used to write 120,905
// lines); the lines left out are counted in
// keyservice_log_lines_suppressed_total and in the next line written.
func TestUnauthenticatedFloodsWriteAFewLinesASecond(t *testing.T) {
	t.Parallel()
	const n = 500
	keysFile, _ := githubKeys(t)
	e := start(t, withConfig(func(c *config.Config) { c.ScanningKeysFile = keysFile }))
	body := []byte(`[{"token":"ks_x","type":"keyservice","url":"https://example.com"}]`)

	posts := 0
	postsSent, postLines := flood(t, "badly signed posts", n, func() int {
		if code, _ := postReport(t, e, body, "test-key-1", "MEUCIQD0bad0signature"); code != 401 {
			t.Fatalf("badly signed post: %d, want 401", code)
		}
		posts++
		return posts
	}, func() []map[string]any {
		return logLines(t, e.logs.String(), func(m map[string]any) bool { return m["msg"] == "secret scanning report refused" })
	})

	calls := 0
	callsSent, callLines := flood(t, "admin calls without a token", n, func() int {
		if _, err := e.grpc.CreateKey(context.Background(), &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("CreateKey without a token: %v", err)
		}
		calls++
		return calls
	}, func() []map[string]any {
		return logLines(t, e.logs.String(), func(m map[string]any) bool { return m["msg"] == "rpc" && m["code"] == "Unauthenticated" })
	})

	want := float64(postsSent - postLines + callsSent - callLines)
	if got := metricValue(t, e, `keyservice_log_lines_suppressed_total{level="INFO"}`); got != want {
		t.Fatalf("keyservice_log_lines_suppressed_total{level=INFO} = %v, want the %v left out", got, want)
	}
}

// TestStalledStreamCyclesWriteAFewLinesASecond: connections closed with
// stalled calls on them make grpc-go log "failed to write status ...
// transport is closing" once per call (4 x 256 such streams used to write
// 27,792 WARN lines in 4.3 s); a few a second are written.
func TestStalledStreamCyclesWriteAFewLinesASecond(t *testing.T) {
	// Not parallel: grpclog is process-wide, and goes to the logger of the
	// server built last.
	e := start(t)
	grpcWarn := func() []map[string]any {
		return logLines(t, e.logs.String(), func(m map[string]any) bool { return m["source"] == "grpc" && m["level"] == "WARN" })
	}
	stalled := 0
	// One cycle: a connection with streams stalled calls, closed.
	cycle := func(streams int) int {
		conn, err := grpc.NewClient(e.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		for range streams {
			if _, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, keyservicev1.KeyService_Validate_FullMethodName); err != nil {
				t.Fatal(err)
			}
		}
		// A call answered after the stalled ones were opened: the server
		// has read their headers (frames are read in order).
		if _, err := keyservicev1.NewKeyServiceClient(conn).Validate(context.Background(), &keyservicev1.ValidateRequest{Key: "garbage"}); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		stalled += streams
		// Every stalled call ends in a line written or one left out.
		waitFor(t, func() bool {
			return len(grpcWarn())+int(metricValue(t, e, `keyservice_log_lines_suppressed_total{level="WARN"}`)) >= stalled
		})
		return stalled
	}
	const conns, streams = 4, 100
	flood(t, "stalled calls on closed connections", conns*streams, func() int {
		if stalled < conns*streams {
			return cycle(streams)
		}
		return cycle(1)
	}, grpcWarn)
}

// TestRedisLogLinesAreStructured: go-redis's own lines (here: it cannot
// dial Redis) land in the service's JSON log, not as plain text on stderr.
func TestRedisLogLinesAreStructured(t *testing.T) {
	// Not parallel: go-redis's logger is process-wide, and goes to the
	// logger of the server built last.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "redis://" + l.Addr().String() + "/0"
	l.Close() // nothing listens there now
	e := start(t, withConfig(func(c *config.Config) { c.RedisURL = down }))
	secret := createLimitedKey(t, e, 10, 10, time.Hour)
	if v := validate(t, e, &keyservicev1.ValidateRequest{Key: secret}); !v.GetValid() {
		t.Fatalf("with Redis down: %v, want VALID from the local budget", v)
	}
	waitFor(t, func() bool {
		return len(logLines(t, e.logs.String(), func(m map[string]any) bool { return m["source"] == "redis" })) > 0
	})
	for _, m := range logLines(t, e.logs.String(), func(m map[string]any) bool { return m["source"] == "redis" }) {
		t.Logf("go-redis, through the service's logger: %s %v", m["level"], m["msg"])
	}
}
