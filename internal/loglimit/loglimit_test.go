package loglimit_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyservice/keyservice/internal/loglimit"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

// TestEachKindGetsABurstThenAFewASecond: Burst lines of a kind at once,
// then PerSecond a second; the first line written after some were left
// out says how many; other kinds (by message, or by source) and DEBUG
// lines are not held back by it.
func TestEachKindGetsABurstThenAFewASecond(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	reg := prometheus.NewRegistry()
	log := loglimit.New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), reg, clock.now)

	for range 100 {
		log.Info("refused", "peer", "203.0.113.9")
	}
	if got := lines(t, &buf); len(got) != loglimit.Burst {
		t.Fatalf("100 lines at once: %d written, want %d", len(got), loglimit.Burst)
	}
	log.Info("another message")
	log.Warn("refused") // another level: another kind
	log.Debug("refused")
	log.Info("from a library", "source", "grpc")
	if got := lines(t, &buf); len(got) != 4 {
		t.Fatalf("other kinds and DEBUG: %d lines, want 4", len(got))
	}
	lib := log.With("source", "redis")
	for i := range 20 {
		lib.Warn("message " + string(rune('a'+i))) // varying messages, one source
	}
	if got := lines(t, &buf); len(got) != loglimit.Burst {
		t.Fatalf("20 lines of one source: %d written, want %d", len(got), loglimit.Burst)
	}

	clock.t = clock.t.Add(time.Second)
	for range 100 {
		log.Info("refused")
	}
	got := lines(t, &buf)
	if len(got) != loglimit.PerSecond {
		t.Fatalf("a second later, 100 more: %d written, want %d", len(got), loglimit.PerSecond)
	}
	if n := got[0][loglimit.SuppressedKey]; n != float64(90) {
		t.Fatalf("the first line after 90 were left out says %v", n)
	}
	for level, want := range map[string]float64{"INFO": 90 + 95, "WARN": 10} {
		if n := suppressed(t, reg, level); n != want {
			t.Errorf("keyservice_log_lines_suppressed_total{level=%s} = %v, want %v", level, n, want)
		}
	}
}

func suppressed(t *testing.T, reg *prometheus.Registry, level string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "keyservice_log_lines_suppressed_total" && m.GetLabel()[0].GetValue() == level {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestCallLinesAreKindsByMethodAndCode: a flood of one refused call (say
// unauthenticated Validates) does not use up the lines of another (a wrong
// admin token, an outage on another method).
func TestCallLinesAreKindsByMethodAndCode(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	log := loglimit.New(slog.New(slog.NewJSONHandler(&buf, nil)), nil, clock.now)
	for range 100 {
		log.Info("rpc", "method", "/keyservice.v1.KeyService/Validate", "code", "Unauthenticated")
	}
	lines(t, &buf)
	log.Info("rpc", "method", "/keyservice.v1.KeyService/CreateKey", "code", "PermissionDenied")
	log.Info("rpc", "method", "/keyservice.v1.KeyService/Validate", "code", "ResourceExhausted")
	if got := lines(t, &buf); len(got) != 2 {
		t.Fatalf("after a flood of one refusal, %d of 2 other calls' lines written", len(got))
	}
}
