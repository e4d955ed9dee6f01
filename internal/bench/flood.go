package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// steadyCPU is the share of the machine the steady flood aims to keep busy.
const steadyCPU = 70

// SteadyResult: admin calls and propagation while invalid keys arrive at a
// fixed rate chosen to keep the machine about steadyCPU% busy.
type SteadyResult struct {
	Ran  bool    `json:"ran"`
	Note string  `json:"note,omitempty"`
	Rate float64 `json:"target_rps"`
	// FloodCPU: the machine's CPU with the flood alone at Rate (what the
	// rate was chosen for); Admin.CPU is with the admin calls and the
	// propagation trials on top.
	FloodCPU float64 `json:"flood_cpu_pct"`
	// ListP99 and CreateP99 split the admin p99 by call: ListKeys is one
	// statement, CreateKey a transaction of several round trips.
	ListP99     float64           `json:"list_p99_ms"`
	CreateP99   float64           `json:"create_p99_ms"`
	Admin       AdminResult       `json:"admin"`
	Propagation PropagationResult `json:"propagation"`
}

// adminCalls alternates ListKeys and CreateKey on g for d and returns each
// call's latency.
func (e *env) adminCalls(ctx context.Context, g *grpcValidator, d time.Duration) []time.Duration {
	var lat []time.Duration
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		start := time.Now()
		if i%2 == 0 {
			_, _ = g.clients[0].ListKeys(adminCtx(ctx), &keyservicev1.ListKeysRequest{PageSize: 10})
		} else {
			_, _ = g.clients[0].CreateKey(adminCtx(ctx), &keyservicev1.CreateKeyRequest{Name: "admin", Owner: "bench"})
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

// adminUnderFlood times admin calls quiet, then while a flood of keys from
// pick runs at full speed against s.
func (e *env) adminUnderFlood(ctx context.Context, s endpoint, g *grpcValidator, pick picker) AdminResult {
	quiet := e.adminCalls(ctx, g, e.cfg.Duration)
	flood, err := newGRPC(s.GRPCAddr().String(), e.cfg.Conns)
	if err != nil {
		return AdminResult{}
	}
	defer flood.close()
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var floodN, refused int64
	refusedBy := map[string]int{}
	start := time.Now()
	wg.Go(func() {
		tallies := drive(fctx, flood, e.cfg.Workers, 24*time.Hour, pick, e.isActive)
		for _, t := range tallies {
			floodN += int64(len(t.lat))
			refused += t.validRefused
			for by, n := range t.refused {
				refusedBy[by] += n
			}
		}
	})
	time.Sleep(200 * time.Millisecond) // flood at full speed before measuring
	cpu := startCPU()
	loud := e.adminCalls(ctx, g, e.cfg.Duration)
	busy := cpu()
	cancel()
	wg.Wait()
	return AdminResult{CallsQuiet: len(quiet), CallsFlood: len(loud),
		P99Quiet: ms(summarise(quiet).P99), P99Flood: ms(summarise(loud).P99),
		FloodRPS: float64(floodN) / time.Since(start).Seconds(), ValidRefused: refused, CPU: busy,
		FloodCalls: floodN, Refused: refusedBy}
}

// steadyFlood sends malformed and unknown keys to a and b at a fixed total
// rate (from full, the saturating run: its rate scaled to steadyCPU% of
// the machine) and meanwhile times admin calls on a and propagation from a
// to b. The attacker runs in its own process (floodProc), and a and b
// should too (see floodproc.go).
func (e *env) steadyFlood(ctx context.Context, a, b endpoint, ga, gb *grpcValidator, full AdminResult) (SteadyResult, error) {
	res := SteadyResult{}
	if full.CPU <= 0 || full.FloodRPS <= 0 {
		res.Note = "skipped: the saturating run measured no CPU (no /proc/stat?)"
		return res, nil
	}
	res.Ran = true
	quiet := e.adminCalls(ctx, ga, e.cfg.Duration)
	pickMal, pickUnk := e.picker("malformed"), e.picker("unknown")
	var ks []string
	for i := range 20_000 {
		if i%2 == 0 {
			ks = append(ks, pickMal(0, i))
		} else {
			ks = append(ks, pickUnk(0, i))
		}
	}
	addrs := []string{a.GRPCAddr().String(), b.GRPCAddr().String()}
	flood := func(ctx context.Context, rate float64) (func() (int64, map[string]int), error) {
		return e.floodProc(ctx, addrs, rate, ks)
	}
	// The machine's CPU does not scale linearly with the rate (a slower
	// flood batches less per system call and wakes more often per call),
	// so the rate is found by bisection: rounds of a second and a half,
	// until the machine is within a few points of steadyCPU% busy.
	lo, hi := 0.0, 2*full.FloodRPS // the attacker in its own process may go faster
	res.Rate = full.FloodRPS * steadyCPU / full.CPU / 2
	for round := 0; round < 7; round++ {
		stop, err := flood(ctx, res.Rate)
		if err != nil {
			return res, err
		}
		time.Sleep(500 * time.Millisecond)
		cpu := startCPU()
		time.Sleep(time.Second)
		busy := cpu()
		stop() // stops the process; a panic before it leaves it to Pdeathsig
		e.log.Debug("steady flood: calibrating", "rate", res.Rate, "cpu", busy)
		res.FloodCPU = busy
		switch {
		case busy <= 0 || (busy > steadyCPU-4 && busy < steadyCPU+4):
			round = 7
		case busy > steadyCPU:
			hi = res.Rate
		default:
			lo = res.Rate
		}
		if round < 7 {
			res.Rate = (lo + hi) / 2
		}
	}
	start := time.Now()
	stop, err := flood(ctx, res.Rate)
	if err != nil {
		return res, err
	}
	defer stop()                       // once: the call below reads its report
	time.Sleep(500 * time.Millisecond) // at its rate before measuring
	cpu := startCPU()
	loud := e.adminCalls(ctx, ga, e.cfg.Duration)
	res.Propagation, err = e.propagation(ctx, ga, gb)
	busy := cpu()
	sent, refusedBy := stop()
	var lists, creates []time.Duration
	for i, d := range loud {
		if i%2 == 0 {
			lists = append(lists, d)
		} else {
			creates = append(creates, d)
		}
	}
	res.ListP99, res.CreateP99 = ms(summarise(lists).P99), ms(summarise(creates).P99)
	res.Admin = AdminResult{CallsQuiet: len(quiet), CallsFlood: len(loud),
		P99Quiet: ms(summarise(quiet).P99), P99Flood: ms(summarise(loud).P99),
		FloodRPS: float64(sent) / time.Since(start).Seconds(), CPU: busy, FloodCalls: sent, Refused: refusedBy}
	return res, err
}

// paced calls v at rate calls a second in all, from workers goroutines
// that each keep their own fixed schedule, until ctx ends, and returns how
// many calls it made. A worker whose call ran late skips the slots it
// missed (a time.Ticker drops ticks) rather than catch up at full speed,
// so the rate is a ceiling, never exceeded.
func paced(ctx context.Context, v validator, workers int, rate float64, pick picker) (int64, map[string]int) {
	var done atomic.Int64
	var mu sync.Mutex
	refused := map[string]int{}
	every := time.Duration(float64(workers) / rate * float64(time.Second))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			// Spread the workers' first calls over one interval.
			select {
			case <-ctx.Done():
				return
			case <-time.After(every * time.Duration(w) / time.Duration(workers)):
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for i := 0; ; i++ {
				if _, err := v.validate(ctx, w, pick(w, i)); err != nil && ctx.Err() == nil {
					mu.Lock()
					refused[refusalBy(err)]++
					mu.Unlock()
				}
				done.Add(1)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
	return done.Load(), refused
}

// startCPU starts measuring how busy the whole machine is; the returned
// func gives the percentage since (0 when /proc/stat cannot be read).
func startCPU() func() float64 {
	b0, t0 := machineCPU()
	return func() float64 {
		b1, t1 := machineCPU()
		if t1 <= t0 {
			return 0
		}
		return 100 * float64(b1-b0) / float64(t1-t0)
	}
}

// machineCPU reads the machine's busy and total CPU time (in ticks) from
// the first line of /proc/stat.
func machineCPU() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "cpu ") {
		return 0, 0
	}
	for i, field := range strings.Fields(line)[1:] {
		v, err := strconv.ParseUint(field, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

func (r SteadyResult) writeMarkdown(w io.Writer) {
	if !r.Ran {
		fmt.Fprintf(w, "- **Steady invalid-key flood**: %s\n", r.Note)
		return
	}
	a := r.Admin
	fmt.Fprintf(w, "- **Admin calls and propagation during a steady invalid-key flood** (the attacker and each replica their own process; %.0f req/s asked, %.0f sent, to both replicas; the flood alone kept the machine %.0f%% busy, %.0f%% with the admin calls and trials on top): admin p99 %.2f ms (%d calls; ListKeys %.2f ms, CreateKey %.2f ms) vs %.2f ms quiet (%d calls); propagation (%d trials): %s.\n",
		r.Rate, a.FloodRPS, r.FloodCPU, a.CPU, a.P99Flood, a.CallsFlood, r.ListP99, r.CreateP99, a.P99Quiet, a.CallsQuiet, r.Propagation.Trials, r.Propagation.kinds())
}
