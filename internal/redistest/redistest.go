// Package redistest gives tests a real Redis: TEST_REDIS_URL when set,
// else 127.0.0.1:6379 when it answers, else a redis-server started for the
// test. Tests that stop and start Redis get a private one from Start. It
// never skips: a test that cannot get a Redis fails.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL returns a Redis URL for the test and a key prefix unique to it.
func URL(t testing.TB) (string, string) {
	t.Helper()
	prefix := "kstest:" + randomHex() + ":"
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		if err := ping(u); err != nil {
			t.Fatalf("TEST_REDIS_URL does not answer: %v", err)
		}
		return u, prefix
	}
	if ping("redis://127.0.0.1:6379/0") == nil {
		return "redis://127.0.0.1:6379/0", prefix
	}
	s := Start(t)
	return s.URL(), prefix
}

// Server is a private redis-server process.
type Server struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
}

// Start runs a private redis-server (stopped when the test ends) on a
// free port. Another process may take the port between the moment it is
// found free and redis-server's bind (test binaries run side by side, and
// other people's tests on the same machine): then another port is tried,
// so a test never talks to someone else's Redis thinking it is its own.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: install Redis (Debian: apt-get install redis-server) or set TEST_REDIS_URL")
	}
	s := &Server{t: t, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		err = s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
	}
}

// URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Stop kills the server (as an outage would).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause stops the server with SIGSTOP: it keeps its port and its
// connections, the kernel still accepts new ones, but nothing is answered
// (a hung Redis, not a dead one). Resume, or the end of the test, ends it.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("SIGSTOP redis-server: %v", err)
	}
	// The stop is asynchronous: wait until the kernel says it is stopped.
	stat := fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(stat)
		if err != nil {
			s.t.Fatalf("redis-server after SIGSTOP: %v", err)
		}
		// pid (comm) state ...: the state follows the last ')'.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server not stopped 5 s after SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("SIGCONT redis-server: %v", err)
	}
}

// Restart starts the server again on the same port and waits for it.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

var errPortTaken = errors.New("another process listens on the port")

// start runs redis-server on s.port and waits until it answers, and is
// the one answering.
func (s *Server) start() error {
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pid, err := serverPID(s.URL())
		switch {
		case err == nil && pid == s.cmd.Process.Pid:
			return nil
		case err == nil:
			s.Stop() // ours could not bind: someone else's answers
			return fmt.Errorf("port %d: %w (pid %d)", s.port, errPortTaken, pid)
		case time.Now().After(deadline):
			return errors.New("redis-server did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverPID is the process id of the Redis at u.
func serverPID(u string) (int, error) {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return 0, err
	}
	opts.DialTimeout = time.Second
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

func ping(u string) error {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	opts.DialTimeout = time.Second
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
