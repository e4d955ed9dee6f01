package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/metadata"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/store"
)

// Faults is what the fault runs measured.
type Faults struct {
	// AdminOnly: a --target run, where only the admin-under-flood fault
	// applies (the others need the service's process and database).
	AdminOnly   bool              `json:"admin_only,omitempty"`
	Outage      OutageResult      `json:"postgres_outage"`
	Listen      ListenResult      `json:"listen_killed"`
	Propagation PropagationResult `json:"propagation"`
	// PropagationLoaded: the same trials while the observing replica serves
	// hot keys at full speed.
	PropagationLoaded PropagationResult `json:"propagation_under_load"`
	Admin             AdminResult       `json:"admin_under_flood"`
	AdminCold         AdminResult       `json:"admin_under_cold_burst"`
	// Steady: admin calls and propagation under an invalid-key flood at a
	// fixed rate that keeps the machine about 70% busy, as a deployment
	// with headroom sees a flood (Admin and AdminCold saturate it).
	Steady SteadyResult `json:"steady_flood"`
	Slots  SlotsResult  `json:"no_connection_slots"`

	// CredentialRevocation: a stored credential revoked on A, refused on B.
	CredentialRevocation CredentialRevocationResult `json:"credential_revocation"`
	// ClientCache: a revocation reaching a Go client's cache.
	ClientCache ClientCacheResult `json:"client_cache"`

	loadWorkers int
}

// OutageResult: Postgres stopped for 10 s during "mixed".
type OutageResult struct {
	Ran          bool           `json:"ran"`
	Note         string         `json:"note,omitempty"`
	Before       map[string]int `json:"before"`
	During       map[string]int `json:"during"`
	After        map[string]int `json:"after"`
	RecoveryMS   float64        `json:"recovery_ms"` // from Postgres up to an uncached key validating again
	UnknownValid int64          `json:"unknown_keys_answered_valid"`
}

// ListenResult: the LISTEN backends terminated.
type ListenResult struct {
	ReconnectMS float64 `json:"reconnect_ms"`
	Delivered   bool    `json:"event_after_reconnect_delivered"`
	DelayMS     float64 `json:"create_visible_after_reconnect_ms"`
}

// PropagationResult: create, update, disable, rotate and revoke on
// replica A, observed on B (whose memory held the key's earlier answer).
type PropagationResult struct {
	Trials    int       `json:"trials"`
	CreateMS  LatencyMS `json:"create_to_valid_ms"`
	UpdateMS  LatencyMS `json:"update_scopes_to_valid_ms"`
	DisableMS LatencyMS `json:"disable_to_disabled_ms"`
	RotateMS  LatencyMS `json:"rotate_to_old_expired_ms"`
	RevokeMS  LatencyMS `json:"revoke_to_refused_ms"`
}

// AdminResult: admin call latency with and without a flood (of invalid
// keys, or of first-seen valid keys that all need lookups).
type AdminResult struct {
	CallsQuiet int     `json:"calls_quiet"`
	CallsFlood int     `json:"calls_flood"`
	P99Quiet   float64 `json:"p99_quiet_ms"`
	P99Flood   float64 `json:"p99_flood_ms"`
	FloodRPS   float64 `json:"flood_rps"`
	// ValidRefused: flood calls with an active key answered UNAVAILABLE.
	ValidRefused int64 `json:"valid_refused"`
	// CPU: how busy the whole machine was during the flood, in percent.
	CPU float64 `json:"cpu_pct"`
	// FloodCalls and Refused: the flood's calls, and those refused by who
	// refused them (refusalBy): a flood mostly refused by a budget is not
	// the flood the target is about.
	FloodCalls int64          `json:"flood_calls"`
	Refused    map[string]int `json:"refused,omitempty"`
}

func adminCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
}

func (e *env) runFaults(ctx context.Context) (*Faults, error) {
	f := &Faults{}
	if e.target != nil {
		// A service elsewhere: only what needs no control of its process or
		// database, the admin calls under a flood of invalid keys.
		ga, err := newGRPC(e.target.GRPCAddr().String(), 1)
		if err != nil {
			return nil, err
		}
		defer ga.close()
		pickMal, pickUnk := e.picker("malformed"), e.picker("unknown")
		e.log.Info("fault: admin calls with and without an invalid-key flood (--target)")
		f.Admin = e.adminUnderFlood(ctx, e.target, ga, func(w, i int) string {
			if i%2 == 0 {
				return pickMal(w, i)
			}
			return pickUnk(w, i)
		})
		f.AdminOnly = true
		return f, nil
	}
	a, stopA, err := e.startService(ctx, "keyservice")
	if err != nil {
		return nil, err
	}
	defer func() { stopA() }()
	b, stopB, err := e.startService(ctx, "keyservice")
	if err != nil {
		return nil, err
	}
	defer func() { stopB() }()
	ga, err := newGRPC(a.GRPCAddr().String(), 1)
	if err != nil {
		return nil, err
	}
	defer ga.close()
	gb, err := newGRPC(b.GRPCAddr().String(), 1)
	if err != nil {
		return nil, err
	}
	defer gb.close()

	e.log.Info("fault: admin calls with and without an invalid-key flood")
	pickMal, pickUnk := e.picker("malformed"), e.picker("unknown")
	f.Admin = e.adminUnderFlood(ctx, a, ga, func(w, i int) string {
		if i%2 == 0 {
			return pickMal(w, i)
		}
		return pickUnk(w, i)
	})
	e.log.Info("fault: admin calls during a burst of first-seen valid keys")
	// Keys no replica has looked up: past the hot keys, and below the key
	// the outage run uses as one this service never saw (len/2).
	cold := e.active[min(1000, len(e.active)/4) : len(e.active)/2]
	var next atomic.Int64
	f.AdminCold = e.adminUnderFlood(ctx, a, ga, func(int, int) string {
		return cold[int(next.Add(1)-1)%len(cold)]
	})
	e.log.Info("fault: admin calls and propagation during an invalid-key flood at about 70% of the CPU")
	if f.Steady, err = e.steadyFloodApart(ctx, f.Admin); err != nil {
		return nil, err
	}
	e.log.Info("fault: every connection slot of the server taken, a burst of first-seen valid keys")
	// B has looked none of the cold keys up (A did, above).
	f.Slots = e.noSlots(ctx, b, cold)
	e.log.Info("fault: propagation between replicas", "trials", e.cfg.Trials)
	if f.Propagation, err = e.propagation(ctx, ga, gb); err != nil {
		return nil, err
	}
	e.log.Info("fault: credential revoked on one replica, refused on the other", "trials", e.cfg.Trials)
	if f.CredentialRevocation, err = e.credentialRevocation(ctx, ga, gb); err != nil {
		return nil, err
	}
	e.log.Info("fault: revocation reaching a Go client's cache", "trials", e.cfg.Trials)
	quiet, err := e.clientCacheRevocation(ctx, ga, b.GRPCAddr().String())
	if err != nil {
		return nil, err
	}
	e.log.Info("fault: propagation between replicas, the observing one under load", "trials", e.cfg.Trials)
	load, err := newGRPC(b.GRPCAddr().String(), e.cfg.Conns)
	if err != nil {
		return nil, err
	}
	lctx, stopLoad := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	f.loadWorkers = e.cfg.Workers
	lwg.Go(func() { drive(lctx, load, e.cfg.Workers, 24*time.Hour, e.picker("hot"), nil) })
	time.Sleep(200 * time.Millisecond) // at full speed before measuring
	f.PropagationLoaded, err = e.propagation(ctx, ga, gb)
	var loaded []time.Duration
	if err == nil {
		e.log.Info("fault: revocation reaching a Go client's cache, its replica under load", "trials", e.cfg.Trials)
		loaded, err = e.clientCacheRevocation(ctx, ga, b.GRPCAddr().String())
		f.ClientCache = ClientCacheResult{Trials: e.cfg.Trials, QuietMS: latency(quiet), LoadedMS: latency(loaded)}
	}
	stopLoad()
	lwg.Wait()
	load.close()
	if err != nil {
		return nil, err
	}
	e.log.Info("fault: LISTEN backends terminated")
	if f.Listen, err = e.killListen(ctx, ga, gb); err != nil {
		return nil, err
	}
	e.log.Info("fault: Postgres stopped for 10s during mixed")
	f.Outage = e.outage(ctx, a)
	return f, nil
}

// propagation runs, per trial, each kind of admin write on replica A and
// times until replica B answers accordingly. Before each write, B has
// answered the key (so a cached answer must be replaced, not filled).
func (e *env) propagation(ctx context.Context, ga, gb *grpcValidator) (PropagationResult, error) {
	var created, updated, disabled, rotated, revoked []time.Duration
	a := ga.clients[0]
	step := func(i int, what string, into *[]time.Duration, write func() error, key, want string, scopes ...string) error {
		if err := write(); err != nil {
			return fmt.Errorf("trial %d: %s: %w", i, what, err)
		}
		d, ok := pollUntil(ctx, gb, key, want, scopes...)
		if !ok {
			return fmt.Errorf("trial %d: %s never reached the other replica (want %s)", i, what, want)
		}
		if into != nil {
			*into = append(*into, d)
		}
		return nil
	}
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
	for i := 0; i < e.cfg.Trials; i++ {
		k, err := a.CreateKey(adminCtx(ctx), &keyservicev1.CreateKeyRequest{Name: "prop", Owner: "bench", Scopes: []string{"a"}})
		if err != nil {
			return PropagationResult{}, err
		}
		d, ok := pollUntil(ctx, gb, k.GetSecret(), "CODE_VALID")
		if !ok {
			return PropagationResult{}, fmt.Errorf("trial %d: created key never became valid on the other replica", i)
		}
		created = append(created, d)
		var next string
		id := k.GetKey().GetId()
		for _, st := range []struct {
			what   string
			into   *[]time.Duration
			write  func() error
			key    func() string
			want   string
			scopes []string
		}{
			{"update scopes", &updated, func() error {
				_, err := a.UpdateKey(adminCtx(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, Scopes: []string{"a", "b"}}, UpdateMask: mask("scopes")})
				return err
			}, func() string { return k.GetSecret() }, "CODE_VALID", []string{"b"}},
			{"disable", &disabled, func() error {
				_, err := a.UpdateKey(adminCtx(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id}, UpdateMask: mask("enabled")})
				return err
			}, func() string { return k.GetSecret() }, "CODE_DISABLED", nil},
			{"enable", nil, func() error {
				_, err := a.UpdateKey(adminCtx(ctx), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, Enabled: true}, UpdateMask: mask("enabled")})
				return err
			}, func() string { return k.GetSecret() }, "CODE_VALID", nil},
			{"rotate", &rotated, func() error {
				r, err := a.RotateKey(adminCtx(ctx), &keyservicev1.RotateKeyRequest{Id: id})
				next = r.GetSecret()
				return err
			}, func() string { return k.GetSecret() }, "CODE_EXPIRED", nil},
			{"the successor", nil, func() error { return nil }, func() string { return next }, "CODE_VALID", nil},
			{"revoke", &revoked, func() error {
				_, err := a.RevokeKey(adminCtx(ctx), &keyservicev1.RevokeKeyRequest{Id: id})
				return err
			}, func() string { return k.GetSecret() }, "CODE_REVOKED", nil},
		} {
			if err != nil {
				break
			}
			err = step(i, st.what, st.into, st.write, st.key(), st.want, st.scopes...)
		}
		if err != nil {
			return PropagationResult{}, err
		}
	}
	return PropagationResult{Trials: e.cfg.Trials, CreateMS: latency(created), UpdateMS: latency(updated),
		DisableMS: latency(disabled), RotateMS: latency(rotated), RevokeMS: latency(revoked)}, nil
}

func (e *env) killListen(ctx context.Context, ga, gb *grpcValidator) (ListenResult, error) {
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return ListenResult{}, err
	}
	defer conn.Close(ctx)
	count := func() int {
		var n int
		_ = conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
			store.ListenApplicationName).Scan(&n)
		return n
	}
	before := count()
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
		store.ListenApplicationName); err != nil {
		return ListenResult{}, err
	}
	start := time.Now()
	for count() < before && time.Since(start) < 30*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	res := ListenResult{ReconnectMS: ms(time.Since(start))}
	k, err := ga.clients[0].CreateKey(adminCtx(ctx), &keyservicev1.CreateKeyRequest{Name: "listen", Owner: "bench"})
	if err != nil {
		return res, err
	}
	d, ok := pollUntil(ctx, gb, k.GetSecret(), "CODE_VALID")
	res.Delivered, res.DelayMS = ok, ms(d)
	return res, nil
}

// outage runs "mixed" over gRPC while Postgres is stopped for 10 s.
func (e *env) outage(ctx context.Context, s endpoint) OutageResult {
	res := OutageResult{}
	if e.cluster == nil {
		res.Note = "skipped: needs the throwaway cluster (unset DATABASE_URL)"
		return res
	}
	res.Ran = true
	unknown := make(map[string]struct{}, len(e.unknown))
	for _, k := range e.unknown {
		unknown[k] = struct{}{}
	}
	g, err := newGRPC(s.GRPCAddr().String(), e.cfg.Conns)
	if err != nil {
		res.Note = err.Error()
		return res
	}
	defer g.close()
	pick := e.picker("mixed")
	var unknownValid atomic.Int64
	phase := func(d time.Duration) map[string]int {
		until := time.Now().Add(d)
		out := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < e.cfg.Workers; w++ {
			wg.Go(func() {
				local := map[string]int{}
				for i := 0; ctx.Err() == nil && time.Now().Before(until); i++ {
					key := pick(w, i)
					code, err := g.validate(ctx, w, key)
					if err != nil {
						local[errName(err)]++
						continue
					}
					local[code]++
					if _, isUnknown := unknown[key]; isUnknown && code == "CODE_VALID" {
						unknownValid.Add(1)
					}
				}
				mu.Lock()
				for k, n := range local {
					out[k] += n
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		return out
	}
	phase(e.cfg.Warmup)
	res.Before = phase(3 * time.Second)
	if err := e.cluster.Stop(ctx); err != nil {
		res.Note = "stopping Postgres: " + err.Error()
		return res
	}
	res.During = phase(10 * time.Second)
	if err := e.cluster.Start(ctx); err != nil {
		res.Note = "starting Postgres: " + err.Error()
		return res
	}
	// An active key this service never saw needs a lookup: it validates
	// again once the service has recovered its connections.
	cold := e.active[len(e.active)/2]
	d, ok := pollUntil(ctx, g, cold, "CODE_VALID")
	res.RecoveryMS = ms(d)
	if !ok {
		res.Note = "did not recover within 10s"
	}
	res.After = phase(3 * time.Second)
	res.UnknownValid = unknownValid.Load()
	return res
}

func (f *Faults) writeMarkdown(w io.Writer) {
	fmt.Fprintln(w, "Fault runs:")
	fmt.Fprintln(w)
	a := f.Admin
	fmt.Fprintf(w, "- **Admin calls during an invalid-key flood** (malformed + unknown keys at full speed, %.0f req/s, the machine %.0f%% busy): p99 %.2f ms (%d calls) vs %.2f ms quiet (%d calls).\n",
		a.FloodRPS, a.CPU, a.P99Flood, a.CallsFlood, a.P99Quiet, a.CallsQuiet)
	if f.AdminOnly {
		fmt.Fprintln(w)
		return
	}
	c := f.AdminCold
	fmt.Fprintf(w, "- **Admin calls during a burst of first-seen valid keys** (every key a lookup, %.0f req/s, %d valid keys refused): p99 %.2f ms (%d calls) vs %.2f ms quiet (%d calls).\n",
		c.FloodRPS, c.ValidRefused, c.P99Flood, c.CallsFlood, c.P99Quiet, c.CallsQuiet)
	f.Steady.writeMarkdown(w)
	f.Slots.writeMarkdown(w)
	p := f.Propagation
	fmt.Fprintf(w, "- **Propagation between two replicas** (%d trials; p50 / p99 / max on the other replica): %s.\n", p.Trials, p.kinds())
	pl := f.PropagationLoaded
	fmt.Fprintf(w, "- **Propagation while the other replica serves hot keys at full speed** (%d trials, %d workers; each includes one Validate call on the loaded replica): %s.\n",
		pl.Trials, f.loadWorkers, pl.kinds())
	f.CredentialRevocation.writeMarkdown(w)
	f.ClientCache.writeMarkdown(w)
	l := f.Listen
	fmt.Fprintf(w, "- **LISTEN backends terminated**: reconnected in %.0f ms; a key created afterwards was valid on the other replica %.2f ms later (delivered: %v).\n",
		l.ReconnectMS, l.DelayMS, l.Delivered)
	o := f.Outage
	if !o.Ran {
		fmt.Fprintf(w, "- **Postgres outage**: %s\n", o.Note)
	} else {
		fmt.Fprintf(w, "- **Postgres stopped for 10 s during mixed** (gRPC): before: %s; during: %s; after: %s. Recovery (Postgres up → an uncached key valid again): %.0f ms. Unknown keys answered VALID: %d.",
			fmtCodes(o.Before), fmtCodes(o.During), fmtCodes(o.After), o.RecoveryMS, o.UnknownValid)
		if o.Note != "" {
			fmt.Fprintf(w, " (%s)", o.Note)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// kinds writes each kind of write's propagation latency.
func (p PropagationResult) kinds() string {
	var parts []string
	for _, k := range []struct {
		name string
		l    LatencyMS
	}{
		{"create→valid", p.CreateMS}, {"update→new scopes", p.UpdateMS}, {"disable→disabled", p.DisableMS},
		{"rotate→old key expired", p.RotateMS}, {"revoke→refused", p.RevokeMS},
	} {
		parts = append(parts, fmt.Sprintf("%s %.2f / %.2f / %.2f ms", k.name, k.l.P50, k.l.P99, k.l.Max))
	}
	return strings.Join(parts, "; ")
}
