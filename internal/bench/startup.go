package bench

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ChildEnv, when set to "serve" in keybench's environment, makes keybench
// run `keyservice serve` instead (configured by the environment): the
// start-up step measures replicas as separate processes, each with its
// own memory.
const ChildEnv = "KEYBENCH_CHILD"

// StartupResult is one replica started on a table of Keys keys.
type StartupResult struct {
	Keys          int     `json:"keys"`
	Replica       string  `json:"replica"`
	ReadySeconds  float64 `json:"ready_seconds"`
	RSSMB         float64 `json:"rss_mb"`
	FilterBytes   int64   `json:"filter_bytes"`
	BytesPerKey   float64 `json:"filter_bytes_per_key"`
	FullReads     int     `json:"full_reads"`
	SnapshotLoads int     `json:"snapshot_loads"`
	// MemoryMode: every active key's record held (records bytes per key
	// beyond the filter); SnapshotWrittenSeconds: from start to the
	// fleet's snapshot written (the replica that read the table answers
	// before it is).
	MemoryMode             bool    `json:"memory_mode"`
	RecordBytesPerKey      float64 `json:"record_bytes_per_key"`
	SnapshotWrittenSeconds float64 `json:"snapshot_written_seconds,omitempty"`
}

// Startup is what the start-up step measured.
type Startup struct {
	Seeds   []SeedResult    `json:"seeds"`
	Results []StartupResult `json:"results"`
}

// SeedResult is how long seeding the table (COPY) took.
type SeedResult struct {
	Keys    int     `json:"keys"`
	Seconds float64 `json:"seconds"`
	MBTable float64 `json:"table_mb"`
}

// runStartup seeds the bench table up to each size in turn (COPY), and at
// each size starts replicas as separate processes and times them to ready:
//   - "full read, snapshots off": reads the whole table (the baseline);
//   - "first": reads the table and writes the fleet's snapshot;
//   - "second" (while the first runs, once its snapshot is written):
//     loads that snapshot.
func (e *env) runStartup(ctx context.Context, sizes []int) (*Startup, error) {
	out := &Startup{}
	pool, err := pgxpool.New(ctx, e.dbURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	have := 0
	for _, n := range sizes {
		start := time.Now()
		if err := seedHashes(ctx, pool, have, n-have, sizes[len(sizes)-1]); err != nil {
			return nil, fmt.Errorf("seeding %d keys: %w", n, err)
		}
		have = n
		// Autovacuum would analyse the table in its own time; the filter is
		// sized from the planner's estimate.
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE api_keys"); err != nil {
			return nil, err
		}
		var size int64
		_ = pool.QueryRow(ctx, "SELECT pg_total_relation_size('api_keys')").Scan(&size)
		out.Seeds = append(out.Seeds, SeedResult{Keys: n, Seconds: time.Since(start).Seconds(), MBTable: float64(size) / (1 << 20)})
		e.log.Info("seeded", "keys", n, "took", time.Since(start).Round(time.Millisecond))
		if _, err := pool.Exec(ctx, "DELETE FROM filter_snapshots"); err != nil {
			return nil, err
		}
		base, err := e.startReplica(ctx, n, "full read, snapshots off", false)
		if err != nil {
			return nil, err
		}
		base.stop()
		first, err := e.startReplica(ctx, n, "first: reads the table, writes the snapshot", true)
		if err != nil {
			return nil, err
		}
		written, err := waitSnapshot(ctx, pool, first)
		if err != nil {
			first.stop()
			return nil, err
		}
		first.result.SnapshotWrittenSeconds = written
		second, err := e.startReplica(ctx, n, "second: loads the snapshot", true)
		first.stop()
		if err != nil {
			return nil, err
		}
		second.stop()
		out.Results = append(out.Results, base.result, first.result, second.result)
	}
	return out, nil
}

// waitSnapshot waits for the snapshot the first replica writes after it
// is ready, and returns how long after its start it was written.
func waitSnapshot(ctx context.Context, pool *pgxpool.Pool, r *replica) (float64, error) {
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM filter_snapshots").Scan(&n); err != nil {
			return 0, err
		}
		if n > 0 {
			return time.Since(r.started).Seconds(), nil
		}
		select {
		case <-r.exited:
			return 0, fmt.Errorf("%s: the replica exited before writing the snapshot", r.result.Replica)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling another process
		}
	}
	return 0, fmt.Errorf("%s: no snapshot after 10 minutes", r.result.Replica)
}

// seedHashes adds n keys after the first `from` (random hashes; start-up
// reads only hashes) in one COPY, generated as it is sent; creation times
// spread the largest size over the past year.
func seedHashes(ctx context.Context, pool *pgxpool.Pool, from, n, largest int) error {
	i := 0
	hash := make([]byte, 32)
	// Created over the past year, as in a table that grew over time (the
	// incremental sync reads only what is recent).
	const year = 365 * 24 * time.Hour
	epoch, step := time.Now().Add(-year), year/time.Duration(largest)
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"api_keys"}, []string{"id", "key_hash", "hint", "name", "owner", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			i++
			_, _ = crand.Read(hash)
			var id [16]byte
			_, _ = crand.Read(id[:])
			id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80 // a random (v4) id, as keys made before UUIDv7 have
			k := from + i
			created := epoch.Add(time.Duration(k) * step)
			return []any{id, hash, "ks_...seed", "seed-" + strconv.Itoa(k), "owner-" + strconv.Itoa(k%1000), created}, nil
		}))
	return err
}

type replica struct {
	remote  // its addresses
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	started time.Time
	result  StartupResult
}

func (r *replica) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// startReplica runs keyservice serve (this binary, as a child) on the
// bench database and waits until it is ready.
func (e *env) startReplica(ctx context.Context, keys int, name string, snapshots bool, env ...string) (*replica, error) {
	grpcAddr, httpAddr := freeAddr(), freeAddr()
	for httpAddr == grpcAddr { // the system may hand out a port just freed again
		httpAddr = freeAddr()
	}
	return e.startReplicaOn(ctx, remote{grpc: hostPort(grpcAddr), http: hostPort(httpAddr)}, keys, name, snapshots, env...)
}

// startReplicaOn is startReplica on the addresses at.
func (e *env) startReplicaOn(ctx context.Context, at remote, keys int, name string, snapshots bool, env ...string) (*replica, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	grpcAddr, httpAddr := string(at.grpc), string(at.http)
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(),
		ChildEnv+"=serve",
		"DATABASE_URL="+e.dbURL,
		"KEYSERVICE_GRPC_ADDR="+grpcAddr,
		"KEYSERVICE_HTTP_ADDR="+httpAddr,
		"KEYSERVICE_LOG_LEVEL=warn",
		"KEYSERVICE_FILTER_SNAPSHOTS="+strconv.FormatBool(snapshots),
	)
	cmd.Env = append(cmd.Env, env...) // the last of a name wins
	r0 := remote{grpc: hostPort(grpcAddr), http: hostPort(httpAddr)}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	r := &replica{cmd: cmd, exited: exited, remote: r0, started: start, result: StartupResult{Keys: keys, Replica: name}}
	go func() { _ = cmd.Wait(); close(exited) }()
	base := "http://" + httpAddr
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := client.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%s: the replica exited before it was ready", name)
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling another process
		}
		if time.Since(start) > 10*time.Minute {
			r.stop()
			return nil, fmt.Errorf("%s: not ready after 10 minutes", name)
		}
	}
	r.result.ReadySeconds = time.Since(start).Seconds()
	r.result.RSSMB = float64(rssBytes(cmd.Process.Pid)) / (1 << 20)
	m := scrapeURL(base + "/metrics")
	r.result.FilterBytes = int64(m("keyservice_filter_bits") / 8)
	r.result.BytesPerKey = float64(r.result.FilterBytes) / float64(keys)
	r.result.FullReads = int(m("keyservice_filter_full_reads_total"))
	r.result.SnapshotLoads = int(m("keyservice_filter_snapshot_loads_total"))
	r.result.MemoryMode = m("keyservice_memory_mode") == 1
	r.result.RecordBytesPerKey = m("keyservice_memory_record_bytes") / float64(keys)
	e.log.Info("replica ready", "keys", keys, "replica", name, "seconds", r.result.ReadySeconds, "rss_mb", r.result.RSSMB)
	return r, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// rssBytes is a process's resident set size (Linux), 0 when unknown.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (s *Startup) writeMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| keys | seeding (COPY + VACUUM ANALYZE) | table |")
	fmt.Fprintln(w, "|---:|---:|---:|")
	for _, r := range s.Seeds {
		fmt.Fprintf(w, "| %d | %.1f s | %.0f MB |\n", r.Keys, r.Seconds, r.MBTable)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| keys | replica | ready after | × full read | snapshot written after | RSS | filter | filter bytes/key | memory mode | record bytes/key | table reads | snapshot loads |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
	var baseline float64
	for _, r := range s.Results {
		if r.SnapshotLoads == 0 && strings.HasPrefix(r.Replica, "full read") {
			baseline = r.ReadySeconds
		}
		ratio := "-"
		if baseline > 0 && !strings.HasPrefix(r.Replica, "full read") {
			ratio = fmt.Sprintf("%.2f×", r.ReadySeconds/baseline)
		}
		written, mode := "-", "no"
		if r.SnapshotWrittenSeconds > 0 {
			written = fmt.Sprintf("%.2f s", r.SnapshotWrittenSeconds)
		}
		if r.MemoryMode {
			mode = "yes"
		}
		fmt.Fprintf(w, "| %d | %s | %.2f s | %s | %s | %.0f MB | %.1f MB | %.1f | %s | %.0f | %d | %d |\n", r.Keys, r.Replica, r.ReadySeconds, ratio,
			written, r.RSSMB, float64(r.FilterBytes)/(1<<20), r.BytesPerKey, mode, r.RecordBytesPerKey, r.FullReads, r.SnapshotLoads)
	}
}
