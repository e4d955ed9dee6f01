// Package pglocal runs a private PostgreSQL cluster from the binaries
// installed on the machine (initdb, pg_ctl), for `keyservice dev`, the test
// suite and the bench tool on machines where no database is running.
package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoBinaries means initdb/pg_ctl were not found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: " +
	"install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) " +
	"or set DATABASE_URL to an existing database")

// Options configure a cluster.
type Options struct {
	// Dir is the data directory; it is created and initialised if empty.
	Dir string
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int
	// Ephemeral trades durability for speed (fsync off): for tests only.
	Ephemeral bool
	// Settings are extra server settings (-c name=value).
	Settings map[string]string
}

// Cluster is a running (or stopped) private cluster.
type Cluster struct {
	opts  Options
	bin   string
	port  int
	cred  *syscall.Credential
	owner *user.User
}

// FindBinaries returns the directory holding initdb and pg_ctl: PATH first,
// then the usual install folders (newest version first).
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	var candidates []string
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin",         // Debian, Ubuntu
		"/usr/pgsql-*/bin",                  // RHEL, Fedora (PGDG)
		"/opt/homebrew/opt/postgresql*/bin", // macOS, Apple silicon
		"/usr/local/opt/postgresql*/bin",    // macOS, Intel
		"/usr/local/pgsql/bin",              // source install
	} {
		m, _ := filepath.Glob(pattern)
		sort.Slice(m, func(i, j int) bool { return versionOf(m[i]) > versionOf(m[j]) })
		candidates = append(candidates, m...)
	}
	for _, dir := range candidates {
		if isExec(filepath.Join(dir, "initdb")) && isExec(filepath.Join(dir, "pg_ctl")) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(path string) int {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, path)
	n, _ := strconv.Atoi(digits)
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Start initialises opts.Dir if needed and starts the server. When the
// process runs as root (initdb refuses root), the cluster runs as the
// unprivileged "postgres" user.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, and initdb refuses root: create an unprivileged 'postgres' user " +
				"(apt-get install postgresql creates one) or set DATABASE_URL")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.owner = u
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	dir, err := filepath.Abs(c.opts.Dir)
	if err != nil {
		return err
	}
	c.opts.Dir = dir
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return c.chown(dir) // already initialised
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := c.chown(dir); err != nil {
		return err
	}
	args := []string{"-D", dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"}
	if c.opts.Ephemeral {
		args = append(args, "--no-sync")
	}
	return c.run(ctx, "initdb", args...)
}

// chown hands dir to the cluster's user and makes sure that user can reach
// it (a temp dir's parents may be private to root).
func (c *Cluster) chown(dir string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("handing %s to user postgres: %w", dir, err)
	}
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("letting user postgres reach %s: %w", dir, err)
			}
		}
	}
	return nil
}

// Start starts a stopped cluster (on the same port when it had one).
func (c *Cluster) Start(ctx context.Context) error {
	if c.port == 0 {
		c.port = c.opts.Port
	}
	if c.port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		c.port = p
	}
	o := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200", c.port)
	if c.opts.Ephemeral {
		o += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	keys := make([]string, 0, len(c.opts.Settings))
	for k := range c.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o += fmt.Sprintf(" -c %s=%s", k, c.opts.Settings[k])
	}
	logFile := filepath.Join(c.opts.Dir, "server.log")
	err := c.run(ctx, "pg_ctl", "start", "-D", c.opts.Dir, "-l", logFile, "-w", "-t", "60", "-o", o)
	if err != nil {
		tail, _ := os.ReadFile(logFile)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("%w\nserver log (%s):\n%s", err, logFile, tail)
	}
	return nil
}

// Stop stops the server quickly (open sessions are ended).
//
// pg_ctl -w returns once postmaster.pid is gone, which the postmaster
// removes just before it exits: Stop then waits (up to 10 s) until the
// process itself has gone too, so that "stopped" means no process runs
// on the data directory (a busy machine showed it for a moment after).
func (c *Cluster) Stop(ctx context.Context) error {
	pid := c.postmasterPID()
	if err := c.run(ctx, "pg_ctl", "stop", "-D", c.opts.Dir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return err
	}
	for end := time.Now().Add(10 * time.Second); pid > 0 && running(pid) && time.Now().Before(end) && ctx.Err() == nil; {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// postmasterPID is the pid in the data directory's postmaster.pid (0 when
// there is none).
func (c *Cluster) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(c.opts.Dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// running reports whether process pid runs (a zombie, whose command line
// is empty, does not; without /proc it is taken as gone).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && len(b) > 0
}

// Port is the TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Dir is the data directory.
func (c *Cluster) Dir() string { return c.opts.Dir }

// URL is a connection URL for database db as the superuser "postgres".
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, c.binary(name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = "/"
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Env = append(os.Environ(), "HOME="+c.owner.HomeDir, "USER=postgres", "LOGNAME=postgres")
	}
	// pg_ctl leaves the server running with our stdout unless it is redirected;
	// with -l it is, so Wait returns once pg_ctl itself exits.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// binary is the path of one of the server's programs: in the folder of
// initdb and pg_ctl, or, when those are links (/usr/local/bin), in the
// folder pg_ctl links to (Debian's pg_basebackup is there).
func (c *Cluster) binary(name string) string {
	p := filepath.Join(c.bin, name)
	if isExec(p) {
		return p
	}
	if real, err := filepath.EvalSymlinks(filepath.Join(c.bin, "pg_ctl")); err == nil {
		if q := filepath.Join(filepath.Dir(real), name); isExec(q) {
			return q
		}
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Standby makes a streaming replica of c in dir (pg_basebackup -R: it
// connects to c as a standby) and starts it on a port of its own. c must
// be running.
func (c *Cluster) Standby(ctx context.Context, dir string) (*Cluster, error) {
	s := &Cluster{opts: Options{Dir: dir, Ephemeral: c.opts.Ephemeral, Settings: c.opts.Settings}, bin: c.bin, cred: c.cred, owner: c.owner}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s.opts.Dir = abs
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	if err := s.chown(abs); err != nil {
		return nil, err
	}
	if err := s.run(ctx, "pg_basebackup", "-D", abs, "-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "postgres",
		"-R", "-X", "stream", "-c", "fast"); err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		_ = s.Kill(context.WithoutCancel(ctx)) // a server left running by a start that timed out
		return nil, err
	}
	return s, nil
}

// Promote makes a standby the primary (pg_ctl promote), and waits for it.
func (c *Cluster) Promote(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "promote", "-D", c.opts.Dir, "-w", "-t", "60")
}

// Kill stops the server at once, as a crash would (pg_ctl stop -m
// immediate): no shutdown checkpoint, sessions cut.
func (c *Cluster) Kill(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "stop", "-D", c.opts.Dir, "-m", "immediate", "-w", "-t", "60")
}
