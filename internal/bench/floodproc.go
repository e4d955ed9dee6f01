package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The steady flood runs as a deployment sees one: the attacker in its own
// process (this binary as KEYBENCH_CHILD=flood), each replica in its own
// (KEYBENCH_CHILD=serve), and the admin caller in keybench itself. In one
// process all of them would share one Go scheduler, and an admin call's
// client and handler goroutines would queue behind the attacker's own
// goroutines, which no deployment does.

// FloodChild is the attacker: it sends the keys read from in (one a line)
// at KEYBENCH_FLOOD_RATE calls a second in all, spread over the gRPC
// addresses in KEYBENCH_FLOOD_ADDRS (comma-separated), from
// KEYBENCH_FLOOD_WORKERS goroutines per address, until ctx ends; then it
// writes how many calls it made to out.
func FloodChild(ctx context.Context, in io.Reader, out io.Writer) int {
	addrs := strings.Split(os.Getenv("KEYBENCH_FLOOD_ADDRS"), ",")
	rate, err1 := strconv.ParseFloat(os.Getenv("KEYBENCH_FLOOD_RATE"), 64)
	workers, err2 := strconv.Atoi(os.Getenv("KEYBENCH_FLOOD_WORKERS"))
	conns, err3 := strconv.Atoi(os.Getenv("KEYBENCH_FLOOD_CONNS"))
	if err1 != nil || err2 != nil || err3 != nil || rate <= 0 || workers < 1 || conns < 1 {
		fmt.Fprintln(os.Stderr, "keybench flood: KEYBENCH_FLOOD_RATE, _WORKERS and _CONNS must be positive numbers")
		return 2
	}
	var ks []string
	sc := bufio.NewScanner(in)
	for sc.Scan() && sc.Text() != "" {
		ks = append(ks, sc.Text())
	}
	if len(ks) == 0 {
		fmt.Fprintln(os.Stderr, "keybench flood: no keys on stdin")
		return 2
	}
	var next atomic.Int64
	pick := func(int, int) string { return ks[int(next.Add(1))%len(ks)] }
	var sent atomic.Int64
	var mu sync.Mutex
	refused := map[string]int{}
	var wg sync.WaitGroup
	for _, a := range addrs {
		g, err := newGRPC(a, conns)
		if err != nil {
			fmt.Fprintln(os.Stderr, "keybench flood:", err)
			return 1
		}
		defer g.close()
		wg.Go(func() {
			n, by := paced(ctx, g, workers, rate/float64(len(addrs)), pick)
			sent.Add(n)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range by {
				refused[k] += v
			}
		})
	}
	wg.Wait()
	_ = json.NewEncoder(out).Encode(floodCount{Sent: sent.Load(), Refused: refused})
	return 0
}

// floodCount is what the attacker process reports when it stops.
type floodCount struct {
	Sent    int64          `json:"sent"`
	Refused map[string]int `json:"refused"`
}

// floodProc starts the attacker process against addrs at rate; stop ends
// it and returns how many calls it made, and the refused ones by who
// refused them.
func (e *env) floodProc(ctx context.Context, addrs []string, rate float64, ks []string) (stop func() (int64, map[string]int), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), ChildEnv+"=flood",
		"KEYBENCH_FLOOD_ADDRS="+strings.Join(addrs, ","),
		"KEYBENCH_FLOOD_RATE="+strconv.FormatFloat(rate, 'f', 1, 64),
		"KEYBENCH_FLOOD_WORKERS="+strconv.Itoa(e.cfg.Workers),
		"KEYBENCH_FLOOD_CONNS="+strconv.Itoa(e.cfg.Conns))
	cmd.Stdin = strings.NewReader(strings.Join(ks, "\n") + "\n\n")
	var outb strings.Builder
	cmd.Stdout, cmd.Stderr = &outb, os.Stderr
	// The attacker dies with keybench, whatever way keybench ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var once sync.Once
	var sent int64
	var refused map[string]int
	return func() (int64, map[string]int) {
		once.Do(func() { sent, refused = e.stopFlood(cmd, &outb) })
		return sent, refused
	}, nil
}

// stopFlood ends the attacker and reads what it reports.
func (e *env) stopFlood(cmd *exec.Cmd, outb *strings.Builder) (int64, map[string]int) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	var c floodCount
	_ = json.Unmarshal([]byte(outb.String()), &c)
	return c.Sent, c.Refused
}

// benchEnv is the environment of a replica run as a child: the settings
// startService gives the in-process service.
func (e *env) benchEnv() []string {
	return []string{
		"DATABASE_URL=" + e.svcURL,
		"KEYSERVICE_CACHE_SIZE=" + strconv.Itoa(max(100_000, e.cfg.Keys)),
		"KEYSERVICE_ADMIN_TOKENS=" + benchAdminToken,
		"KEYSERVICE_CALLER_RATE=1000000000", "KEYSERVICE_CALLER_BURST=1073741824",
		"KEYSERVICE_FAILED_RATE=1000000000", "KEYSERVICE_FAILED_BURST=1073741824",
		"KEYSERVICE_KEY_RATE=1000000000/1s",
		"KEYSERVICE_SIGNING_KEYS=" + benchSigningKeys,
	}
}

// steadyFloodApart runs steadyFlood on two replicas of their own, each a
// process (as in a deployment), on the bench database.
func (e *env) steadyFloodApart(ctx context.Context, full AdminResult) (SteadyResult, error) {
	var reps []*replica
	defer func() {
		for _, r := range reps {
			r.stop()
		}
	}()
	var clients []*grpcValidator
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for _, name := range []string{"a", "b"} {
		r, err := e.startReplica(ctx, len(e.active), name, false, e.benchEnv()...)
		if err != nil {
			return SteadyResult{}, err
		}
		reps = append(reps, r)
		g, err := newGRPC(r.GRPCAddr().String(), 1)
		if err != nil {
			return SteadyResult{}, err
		}
		clients = append(clients, g)
	}
	return e.steadyFlood(ctx, reps[0], reps[1], clients[0], clients[1], full)
}
