package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// The fleet scenario (--fleet): three replicas, each its own process, on
// one database and one Redis, behind a real nginx; a rolling restart of
// all three (SIGTERM, the replica's shutdown delay and drain, a new
// process on the same addresses, ready) while hot and cold keys are
// validated through the balancer over gRPC and REST, and one key with a
// per-key limit is asked for more than its limit.

// FleetResult is what the rolling restart measured.
type FleetResult struct {
	Replicas       int              `json:"replicas"`
	Balancer       string           `json:"balancer"`
	Seconds        float64          `json:"seconds"`
	Restarts       []FleetRestart   `json:"restarts"`
	Calls          map[string]int64 `json:"calls"` // by transport
	ValidRefused   int64            `json:"valid_keys_refused"`
	BalancerErrors int64            `json:"balancer_errors"`
	Errors         map[string]int64 `json:"errors,omitempty"`        // what the refusals were
	ErrorSamples   []string         `json:"error_samples,omitempty"` // the first few, whole, with when
	Latency        LatencyMS        `json:"latency_ms"`
	Limit          FleetLimit       `json:"per_key_limit"`
}

// FleetRestart is one replica's turn.
type FleetRestart struct {
	Replica      int     `json:"replica"`
	StopSeconds  float64 `json:"stop_seconds"`  // SIGTERM until the process exited
	ReadySeconds float64 `json:"ready_seconds"` // the new process started until ready
}

// FleetLimit is the per-key limit asked beyond its budget throughout.
type FleetLimit struct {
	Limit       int64            `json:"limit"`
	Asked       int64            `json:"asked"`
	Valid       int64            `json:"valid"`
	RateLimited int64            `json:"rate_limited"`
	Other       int64            `json:"other"`
	OtherCodes  map[string]int64 `json:"other_codes,omitempty"`
}

const fleetReplicas = 3

// runFleet runs the fleet scenario.
func (e *env) runFleet(ctx context.Context) (*FleetResult, error) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, errors.New("--fleet needs nginx (apt-get install nginx)")
		}
		nginx = "/usr/sbin/nginx"
	}
	dir, err := os.MkdirTemp("", "keybench-fleet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	redisURL, stopRedis, err := startRedis(dir)
	if err != nil {
		return nil, err
	}
	defer stopRedis()

	addrs := make([]remote, fleetReplicas)
	for i := range addrs {
		addrs[i] = remote{grpc: hostPort(freeAddr()), http: hostPort(freeAddr())}
	}
	env := []string{
		"KEYSERVICE_REDIS_URL=" + redisURL,
		"KEYSERVICE_ADMIN_TOKENS=" + benchAdminToken,
		// Every call arrives from nginx's address: one caller.
		"KEYSERVICE_CALLER_RATE=1000000", "KEYSERVICE_CALLER_BURST=1000000",
		"KEYSERVICE_SHUTDOWN_DELAY=1s", "KEYSERVICE_SHUTDOWN_TIMEOUT=10s",
		// Redis shares these two cores with the load, nginx and three
		// replicas: 50 ms (the default) is passed now and then, and the
		// local budget then answers (the limit is no longer exact).
		"KEYSERVICE_REDIS_TIMEOUT=250ms",
	}
	start := func(i int) (*replica, error) {
		return e.startReplicaAt(ctx, addrs[i], fmt.Sprintf("fleet-%d", i), env...)
	}
	reps := make([]*replica, fleetReplicas)
	defer func() {
		for _, r := range reps {
			if r != nil {
				r.stop()
			}
		}
	}()
	for i := range reps {
		if reps[i], err = start(i); err != nil {
			return nil, err
		}
	}

	httpPort, grpcPort := port(freeAddr()), port(freeAddr())
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		return nil, err
	}
	type pair struct{ HTTP, GRPC string }
	var ups []pair
	for _, a := range addrs {
		ups = append(ups, pair{string(a.http), string(a.grpc)})
	}
	err = fleetNginx.Execute(f, map[string]any{"Dir": dir, "Replicas": ups, "HTTPPort": httpPort, "GRPCPort": grpcPort})
	f.Close()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, nginx, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if raw, _ := os.ReadFile(filepath.Join(dir, "error.log")); len(raw) > 0 {
			var errs []string
			for _, l := range strings.Split(string(raw), "\n") {
				if strings.Contains(l, "[error]") && !strings.Contains(l, "Connection refused") {
					errs = append(errs, l)
				}
			}
			log := e.log.Info
			if len(errs) > 0 {
				log = e.log.Warn
			}
			log("nginx's error log (refused connections, which nginx passes on, left out)", "lines", strings.Count(string(raw), "\n"), "errors", strings.Join(errs, "\n"))
		}
	}()
	version, _ := exec.Command(nginx, "-v").CombinedOutput()
	front := remote{grpc: hostPort(fmt.Sprintf("127.0.0.1:%d", grpcPort)), http: hostPort(fmt.Sprintf("127.0.0.1:%d", httpPort))}
	if err := waitListening(ctx, string(front.http)); err != nil {
		return nil, err
	}

	g, err := newGRPC(string(front.grpc), 4)
	if err != nil {
		return nil, err
	}
	defer g.close()
	rest := newREST(string(front.http), 8)
	defer rest.close()
	const limit = 300
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
	created, err := g.clients[0].CreateKey(actx, &keyservicev1.CreateKeyRequest{Name: "fleet-limited", Owner: "bench-fleet",
		RateLimit: &keyservicev1.RateLimit{Limit: limit, Period: durationpb.New(24 * time.Hour)}})
	if err != nil {
		return nil, fmt.Errorf("creating the limited key through the balancer: %w", err)
	}
	limited := created.GetSecret()
	// The other replicas learn of the key by NOTIFY within milliseconds;
	// asking before that would be NOT_FOUND there, not a limit.
	sleep(ctx, time.Second)

	res := &FleetResult{Replicas: fleetReplicas, Balancer: strings.TrimSpace(string(version)), Calls: map[string]int64{},
		Errors: map[string]int64{}, Limit: FleetLimit{Limit: limit}}
	var (
		mu        sync.Mutex
		lat       []time.Duration
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		refused   atomic.Int64
		balancer  atomic.Int64
		callsGRPC atomic.Int64
		callsREST atomic.Int64
	)
	began := time.Now()            // again once the load is on (under mu)
	phase := "before the restarts" // under mu
	// sample keeps the first refusals whole, with when and during what
	// (under mu): a rare one is otherwise only a count.
	sample := func(transport, what string, err error) {
		if len(res.ErrorSamples) >= 5 {
			return
		}
		var rr *restRefusal
		switch {
		case errors.As(err, &rr):
			what = fmt.Sprintf("%s %s %q", rr.Error(), rr.name, rr.msg)
		case err != nil:
			what = err.Error()
		}
		res.ErrorSamples = append(res.ErrorSamples, fmt.Sprintf("%.3f s, %s, %s: %q", time.Since(began).Seconds(), phase, transport, what))
	}
	setPhase := func(p string) {
		mu.Lock()
		phase = p
		mu.Unlock()
	}
	hot := e.active[:min(100, len(e.active))]
	worker := func(w int, transport string, v validator, calls *atomic.Int64) {
		var mine []time.Duration
		for {
			select {
			case <-stop:
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
				return
			default:
			}
			key := hot[rand.IntN(len(hot))]
			if rand.IntN(5) == 0 { // one call in five a cold key
				key = e.active[rand.IntN(len(e.active))]
			}
			t0 := time.Now()
			code, err := v.validate(ctx, w, key)
			mine = append(mine, time.Since(t0))
			calls.Add(1)
			if err != nil || code != "CODE_VALID" {
				refused.Add(1)
				what := code
				if err != nil {
					balancer.Add(1)
					what = refusalName(err)
				}
				mu.Lock()
				res.Errors[what]++
				sample(transport, what, err)
				mu.Unlock()
			}
		}
	}
	for w := 0; w < 6; w++ {
		wg.Go(func() { worker(w, "gRPC", g, &callsGRPC) })
		wg.Go(func() { worker(w, "REST", rest, &callsREST) })
	}
	wg.Go(func() { // the limited key, about 100 calls a second
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			code, err := g.validate(ctx, 0, limited)
			res.Limit.Asked++
			switch {
			case err != nil:
				res.Limit.Other++
				balancer.Add(1)
				mu.Lock()
				res.Errors[refusalName(err)]++
				sample("gRPC, the limited key", refusalName(err), err)
				mu.Unlock()
			case code == "CODE_VALID":
				res.Limit.Valid++
			case code == "CODE_RATE_LIMITED":
				res.Limit.RateLimited++
			default:
				res.Limit.Other++
				if res.Limit.OtherCodes == nil {
					res.Limit.OtherCodes = map[string]int64{}
				}
				res.Limit.OtherCodes[code]++
			}
		}
	})

	mu.Lock()
	began = time.Now()
	mu.Unlock()
	sleep(ctx, 2*time.Second)
	for i := range reps {
		t0 := time.Now()
		setPhase(fmt.Sprintf("replica %d stopping", i))
		reps[i].stop()
		stopped := time.Since(t0)
		reps[i] = nil
		setPhase(fmt.Sprintf("replica %d starting", i))
		r, err := start(i)
		if err != nil {
			close(stop)
			wg.Wait()
			return nil, fmt.Errorf("restarting replica %d: %w", i, err)
		}
		reps[i] = r
		res.Restarts = append(res.Restarts, FleetRestart{Replica: i, StopSeconds: stopped.Seconds(), ReadySeconds: r.result.ReadySeconds})
		e.log.Info("fleet: replica restarted", "replica", i, "stop_s", stopped.Seconds(), "ready_s", r.result.ReadySeconds)
		setPhase(fmt.Sprintf("replica %d ready", i))
		sleep(ctx, 2*time.Second) // nginx tries it again after fail_timeout
	}
	close(stop)
	wg.Wait()
	res.Seconds = time.Since(began).Seconds()
	res.Calls["grpc"], res.Calls["rest"] = callsGRPC.Load(), callsREST.Load()
	res.ValidRefused, res.BalancerErrors = refused.Load(), balancer.Load()
	res.Latency = latency(lat)
	return res, nil
}

func (f *FleetResult) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "Rolling restart of %d replicas (each its own process; one PostgreSQL, one Redis) behind %s, under load through it for %.1f s:\n\n",
		f.Replicas, f.Balancer, f.Seconds)
	fmt.Fprintln(w, "| replica | SIGTERM to exit s | start to ready s |")
	fmt.Fprintln(w, "|---:|---:|---:|")
	for _, r := range f.Restarts {
		fmt.Fprintf(w, "| %d | %.2f | %.2f |\n", r.Replica, r.StopSeconds, r.ReadySeconds)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Calls: gRPC %d, REST %d (hot keys, one in five cold); valid keys refused %d; errors at the balancer %d %v; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms.\n\n",
		f.Calls["grpc"], f.Calls["rest"], f.ValidRefused, f.BalancerErrors, f.Errors, f.Latency.P50, f.Latency.P99, f.Latency.Max)
	fmt.Fprintf(w, "Per-key limit of %d per day (no refill to speak of within the run), shared through Redis: asked %d times, VALID %d, RATE_LIMITED %d, other %d %v.\n\n",
		f.Limit.Limit, f.Limit.Asked, f.Limit.Valid, f.Limit.RateLimited, f.Limit.Other, f.Limit.OtherCodes)
	if len(f.ErrorSamples) > 0 {
		fmt.Fprintln(w, "The first refusals, whole (seconds since the load began, what the fleet was doing):")
		fmt.Fprintln(w)
		for _, s := range f.ErrorSamples {
			fmt.Fprintf(w, "- %s\n", s)
		}
		fmt.Fprintln(w)
	}
}

// startReplicaAt is startReplica on the given addresses (a restarted
// replica takes its predecessor's, as behind a balancer).
func (e *env) startReplicaAt(ctx context.Context, at remote, name string, env ...string) (*replica, error) {
	return e.startReplicaOn(ctx, at, len(e.active), name, true, env...)
}

// fleetReport runs the fleet scenario into rep (Run with --fleet).
func (e *env) fleetReport(ctx context.Context, rep *Report) (*Report, error) {
	f, err := e.runFleet(ctx)
	if err != nil {
		return nil, err
	}
	rep.Fleet = f
	rep.Service = "three replicas, each a separate process (keybench re-run as `keyservice serve`), on the bench database and a private Redis, behind nginx; the load through nginx"
	rep.check()
	return rep, nil
}

// targets adds the fleet's targets to a report's (Report.check).
func (f *FleetResult) targets(add func(ok bool, format string, args ...any)) {
	add(f.ValidRefused == 0, "fleet: %d valid keys refused during the rolling restart (target 0)", f.ValidRefused)
	add(f.BalancerErrors == 0, "fleet: %d errors at the balancer during the rolling restart (target 0)", f.BalancerErrors)
	add(f.Limit.Valid == f.Limit.Limit && f.Limit.Other == 0, "fleet: per-key limit %d through Redis gave %d VALID of %d asked (target exactly the limit)",
		f.Limit.Limit, f.Limit.Valid, f.Limit.Asked)
}
