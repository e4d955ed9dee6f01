// Package loglimit keeps every kind of log line to a few a second, so that
// no client — least of all an unauthenticated one — can make the service
// write its log as fast as it can send requests (10 s of badly signed
// secret-scanning posts used to write 120,905 lines, 19 MB). Lines past
// the budget are counted, in a metric and in the next line of their kind
// that is written; DEBUG lines, off unless asked for, are never held back.
package loglimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// Burst lines of a kind may be written at once, and PerSecond more
	// each second after that.
	Burst     = 10
	PerSecond = 5
	// maxKinds bounds the table of kinds; past it, new kinds share one
	// budget.
	maxKinds = 1024
	// SuppressedKey is the attribute of a written line that counts the
	// lines of its kind left out since the previous one.
	SuppressedKey = "suppressed"
)

// Kinds: a line's kind is its level and its source attribute (grpc, http,
// redis: libraries whose messages vary) when it has one, else its message
// with its method and code attributes (a call's line).

// New returns log with its lines limited per kind; reg (may be nil) gets
// keyservice_log_lines_suppressed_total{level}. now is time.Now when nil.
func New(log *slog.Logger, reg prometheus.Registerer, now func() time.Time) *slog.Logger {
	if now == nil {
		now = time.Now
	}
	l := &limiter{now: now, kinds: map[string]*bucket{}, suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyservice_log_lines_suppressed_total",
		Help: "Log lines not written because their kind (level and message, or source) was over " +
			"its budget of a few a second; the next line of the kind written says how many.",
	}, []string{"level"})}
	if reg != nil {
		reg.MustRegister(l.suppressed)
	}
	return slog.New(&handler{next: log.Handler(), l: l})
}

type limiter struct {
	mu         sync.Mutex
	now        func() time.Time
	kinds      map[string]*bucket
	suppressed *prometheus.CounterVec
}

// bucket is one kind's budget: tokens at last, and the lines left out
// since the last one written.
type bucket struct {
	tokens  float64
	last    time.Time
	dropped int
}

// take spends a token of kind; when it may be written, dropped is how many
// of its lines were left out before it.
func (l *limiter) take(kind string) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.kinds[kind]
	if b == nil {
		if len(l.kinds) >= maxKinds {
			kind = "\x00other"
			b = l.kinds[kind]
		}
		if b == nil {
			b = &bucket{tokens: Burst, last: now}
			l.kinds[kind] = b
		}
	}
	b.tokens = min(Burst, b.tokens+now.Sub(b.last).Seconds()*PerSecond)
	b.last = now
	if b.tokens < 1 {
		b.dropped++
		return false, 0
	}
	b.tokens--
	dropped, b.dropped = b.dropped, 0
	return true, dropped
}

// handler limits the lines of next; source is the source attribute added
// with WithAttrs, if any.
type handler struct {
	next   slog.Handler
	l      *limiter
	source string
}

func (h *handler) Enabled(ctx context.Context, lvl slog.Level) bool { return h.next.Enabled(ctx, lvl) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return h.next.Handle(ctx, r)
	}
	kind := h.source
	var method, code string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "source":
			kind = a.Value.String()
		case "method":
			method = a.Value.String()
		case "code":
			code = a.Value.String()
		}
		return true
	})
	if kind == "" {
		// A call's line is of its method and code: a flood of one refusal
		// (unauthenticated Validate) does not hide another (a wrong admin
		// token, an outage). Both are bounded sets.
		kind = r.Message + "\x00" + method + "\x00" + code
	}
	ok, dropped := h.l.take(r.Level.String() + "\x00" + kind)
	if !ok {
		h.l.suppressed.WithLabelValues(r.Level.String()).Inc()
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(SuppressedKey, dropped))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	source := h.source
	for _, a := range as {
		if a.Key == "source" {
			source = a.Value.String()
		}
	}
	return &handler{next: h.next.WithAttrs(as), l: h.l, source: source}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), l: h.l, source: h.source}
}
