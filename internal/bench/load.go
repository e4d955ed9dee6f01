package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/backoff"
)

// Result is one measured run.
type Result struct {
	Scenario  string `json:"scenario"`
	Transport string `json:"transport"`
	Mode      string `json:"mode"`
	// Requests counts every call made; Answered those the service judged
	// (an answer with a code). RPS is answered calls per second and the
	// latencies are theirs: a refusal is not a validation.
	Requests int64     `json:"requests"`
	Answered int64     `json:"answered"`
	Seconds  float64   `json:"seconds"`
	RPS      float64   `json:"rps"`
	Latency  LatencyMS `json:"latency_ms"`
	// Refused counts every call that got an error instead of an answer, by
	// who refused it (refusalBy: "caller budget", "failed-attempt guard",
	// "database unavailable", ...); Errors counts the same calls by status.
	Refused map[string]int `json:"refused"`
	Errors  map[string]int `json:"errors"`  // by status
	Answers map[string]int `json:"answers"` // by code
	// ValidRefused counts calls with an active key answered UNAVAILABLE
	// (gRPC) or 503 (REST): real customers refused.
	ValidRefused int64 `json:"valid_refused"`
	// LookupsPer1k is database lookups per 1,000 requests; -1 when unknown.
	LookupsPer1k float64 `json:"lookups_per_1k"`
	PoolWaits    float64 `json:"pool_acquire_waits"`
	// Memory: the service answered in memory mode (every active key's
	// record in memory) at the end of the run (keyservice mode only).
	Memory    bool    `json:"memory_mode,omitempty"`
	VsCeiling float64 `json:"vs_ceiling,omitempty"`
	VsNaive   float64 `json:"vs_naive,omitempty"`
}

// LatencyMS is Latencies in milliseconds, for JSON.
type LatencyMS struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// picker chooses the key of a worker's next call.
type picker func(worker int, i int) string

func (e *env) picker(scenario string) picker {
	hot := e.active[:min(1000, len(e.active))]
	var unknownNext atomic.Int64
	unknown := func() string {
		n := unknownNext.Add(1)
		return e.unknown[int(n)%len(e.unknown)]
	}
	mix := func(w, i int) int { return (w*7919 + i*104729) & 0x7fffffff }
	switch scenario {
	case "hot", "churn", "restart":
		return func(w, i int) string { return hot[mix(w, i)%len(hot)] }
	case "cold":
		return func(w, i int) string { return e.active[mix(w, i)%len(e.active)] }
	case "malformed":
		return func(w, i int) string { return e.malformed[mix(w, i)%len(e.malformed)] }
	case "forged":
		return func(w, i int) string { return e.forged[mix(w, i)%len(e.forged)] }
	case "unknown":
		return func(w, i int) string { return unknown() }
	case "revoked":
		return func(w, i int) string { return e.revoked[mix(w, i)%len(e.revoked)] }
	case "mixed":
		return func(w, i int) string {
			if mix(w, i)%10 == 0 {
				return unknown()
			}
			return hot[mix(w, i)%len(hot)]
		}
	}
	panic("unknown scenario " + scenario)
}

// tally collects one worker's observations.
type tally struct {
	lat          []time.Duration // every call
	answeredLat  []time.Duration // the calls answered
	answers      map[string]int
	errors       map[string]int
	refused      map[string]int // by who refused (refusalBy)
	validRefused int64
}

// holder is a validator that may be swapped while load runs (a restart):
// drive holds it before starting a call's clock, so the swap itself is not
// counted as a call's latency.
type holder interface {
	hold()
	release()
}

// isRefusal reports whether err is the service refusing to answer for want
// of the database (gRPC UNAVAILABLE, REST 503).
func isRefusal(err error) bool {
	n := errName(err)
	return n == "Unavailable" || n == "HTTP 503"
}

// drive runs workers calling v with keys from pick for d (every call
// started before the end completes and counts; none is cut off). active
// tells which keys exist and are active, for counting refused valid keys;
// it may be nil.
func drive(ctx context.Context, v validator, workers int, d time.Duration, pick picker, active func(string) bool) []*tally {
	out := make([]*tally, workers)
	until := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		t := &tally{lat: make([]time.Duration, 0, 1<<14), answeredLat: make([]time.Duration, 0, 1<<14),
			answers: map[string]int{}, errors: map[string]int{}, refused: map[string]int{}}
		out[w] = t
		wg.Go(func() {
			h, swappable := v.(holder)
			for i := 0; ctx.Err() == nil && time.Now().Before(until); i++ {
				key := pick(w, i)
				if swappable {
					h.hold()
				}
				start := time.Now()
				code, err := v.validate(ctx, w, key)
				d := time.Since(start)
				if swappable {
					h.release()
				}
				if ctx.Err() != nil {
					return // interrupted: not a sample
				}
				t.lat = append(t.lat, d)
				if err != nil {
					t.errors[errName(err)]++
					t.refused[refusalBy(err)]++
					if active != nil && isRefusal(err) && active(key) {
						t.validRefused++
					}
					continue
				}
				t.answers[code]++
				t.answeredLat = append(t.answeredLat, d)
			}
		})
	}
	wg.Wait()
	return out
}

func errName(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Code().String()
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "HTTP ") {
		return msg
	}
	return "transport"
}

// measure warms up, then drives load for the configured duration. In the
// restart scenario, restart replaces the service halfway through.
func (e *env) measure(ctx context.Context, s endpoint, mode, scenario, transport string, restart func() (endpoint, error)) (Result, error) {
	var v validator
	v, err := newValidateClient(transport, s, e.cfg)
	if err != nil {
		return Result{}, err
	}
	var sw *swapper
	if scenario == "restart" {
		sw = &swapper{cur: v}
		v = sw
	}
	defer func() { v.close() }()
	pick := e.picker(scenario)
	var churnStop func()
	if scenario == "churn" {
		churnStop = e.churn(ctx, s)
		defer churnStop()
	}
	if e.cfg.Warmup > 0 {
		drive(ctx, v, e.cfg.Workers, e.cfg.Warmup, pick, nil)
	}
	lookupsBefore := e.lookups(ctx)
	waitsBefore := scrape(s, "keyservice_db_pool_acquire_waits_total")
	runtime.GC()
	restarted := make(chan error, 1)
	if sw != nil {
		go func() {
			if !backoff.Sleep(ctx, e.cfg.Duration/2) {
				restarted <- ctx.Err()
				return
			}
			restarted <- sw.swap(func() (validator, error) {
				oldWaits := scrape(s, "keyservice_db_pool_acquire_waits_total") - waitsBefore
				ns, err := restart()
				if err != nil {
					return nil, err
				}
				// A new process counts from zero: carry the old one's waits.
				s, waitsBefore = ns, -oldWaits
				return newValidateClient(transport, ns, e.cfg)
			})
		}()
	} else {
		restarted <- nil
	}
	start := time.Now()
	tallies := drive(ctx, v, e.cfg.Workers, e.cfg.Duration, pick, e.isActive)
	elapsed := time.Since(start)
	if err := <-restarted; err != nil {
		return Result{}, fmt.Errorf("restarting the service: %w", err)
	}
	r := Result{Scenario: scenario, Transport: transport, Mode: mode, Seconds: elapsed.Seconds(),
		Errors: map[string]int{}, Answers: map[string]int{}, Refused: map[string]int{}}
	var answered []time.Duration
	for _, t := range tallies {
		r.Requests += int64(len(t.lat))
		answered = append(answered, t.answeredLat...)
		for k, n := range t.answers {
			r.Answers[k] += n
		}
		for k, n := range t.errors {
			r.Errors[k] += n
		}
		for k, n := range t.refused {
			r.Refused[k] += n
		}
		r.ValidRefused += t.validRefused
	}
	r.Answered = int64(len(answered))
	r.RPS = float64(r.Answered) / elapsed.Seconds()
	l := summarise(answered)
	r.Latency = LatencyMS{P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max)}
	r.LookupsPer1k = -1
	if after := e.lookups(ctx); after >= 0 && lookupsBefore >= 0 && r.Requests > 0 {
		r.LookupsPer1k = float64(after-lookupsBefore) / float64(r.Requests) * 1000
	}
	r.PoolWaits = scrape(s, "keyservice_db_pool_acquire_waits_total") - waitsBefore
	r.Memory = mode == "keyservice" && scrape(s, "keyservice_memory_mode") == 1
	return r, nil
}

// warm drives the hot scenario, unmeasured, for twice the warm-up.
func (e *env) warm(ctx context.Context, s endpoint, transport string) error {
	v, err := newValidateClient(transport, s, e.cfg)
	if err != nil {
		return err
	}
	defer v.close()
	drive(ctx, v, e.cfg.Workers, 2*e.cfg.Warmup, e.picker("hot"), nil)
	return nil
}

// swapper is the restart scenario's validator: swap stops the calls, runs
// the restart and points the load at the new service.
type swapper struct {
	mu  sync.RWMutex
	cur validator
}

func (s *swapper) hold()    { s.mu.RLock() }
func (s *swapper) release() { s.mu.RUnlock() }

func (s *swapper) validate(ctx context.Context, w int, key string) (string, error) {
	return s.cur.validate(ctx, w, key) // under hold
}

func (s *swapper) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.close()
}

// swap waits for the calls in flight, then replaces the validator with the
// one next returns (the old one is closed). Calls wait meanwhile, outside
// their measured time.
func (s *swapper) swap(next func() (validator, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	nv, err := next()
	if err != nil {
		return err
	}
	s.cur.close()
	s.cur = nv
	return nil
}

// churn creates and revokes keys at a steady rate (20 each per second)
// through the admin API while the scenario runs.
func (e *env) churn(ctx context.Context, s endpoint) func() {
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g, err := newGRPC(s.GRPCAddr().String(), 1)
		if err != nil {
			return
		}
		defer g.close()
		actx := metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+adminToken)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
			}
			k, err := g.clients[0].CreateKey(actx, &keyservicev1.CreateKeyRequest{Name: "churn", Owner: "churn"})
			if err != nil {
				continue
			}
			_, _ = g.clients[0].RevokeKey(actx, &keyservicev1.RevokeKeyRequest{Id: k.GetKey().GetId()})
		}
	}()
	return func() { cancel(); <-done }
}

func (m *Machine) fill() {
	m.Cores = runtime.NumCPU()
	m.Go = runtime.Version()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGB = (kb + 512*1024) / (1024 * 1024)
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					m.CPU = strings.TrimSpace(v)
				}
				break
			}
		}
	}
}
