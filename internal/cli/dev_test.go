package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/cli"
)

// TestDevRunsAndItsPrintedCommandsWork starts `keyservice dev` as a new user
// would (no DATABASE_URL: a private cluster from the local binaries), then
// runs the curl and grpcurl commands it prints, word for word, in bash.
func TestDevRunsAndItsPrintedCommandsWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the printed commands (.ci/run installs it)")
	}
	t.Setenv("DATABASE_URL", "")
	t.Setenv("KEYSERVICE_ADMIN_TOKENS", "")
	out := &syncBuffer{}
	dataDir := filepath.Join(t.TempDir(), "pg") // before the cleanup below, so removed after it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"dev", "--data-dir", dataDir,
			"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-level", "warn"}, out, out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 || !strings.Contains(out.String(), "stopping the private PostgreSQL cluster") {
				t.Errorf("dev exited %d:\n%s", code, out.String())
			}
			if b, err := exec.Command("pgrep", "-f", "postgres -D "+dataDir).Output(); err == nil {
				t.Errorf("private cluster still running after dev stopped: %s", b)
			}
		case <-time.After(time.Minute):
			t.Error("dev did not stop")
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "--- REST (curl) ---") {
		if time.Now().After(deadline) {
			t.Fatalf("dev printed no examples:\n%s", out.String())
		}
		select {
		case code := <-done:
			t.Fatalf("dev exited %d:\n%s", code, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	text := out.String()
	token := regexp.MustCompile(`export KEYSERVICE_ADMIN_TOKEN=(\S+)`).FindStringSubmatch(text)
	if token == nil {
		t.Fatalf("no admin token printed:\n%s", text)
	}
	// No waiting: dev prints its examples once the service is ready, so
	// they work pasted at once.

	env := append(os.Environ(), "KEYSERVICE_ADMIN_TOKEN="+token[1])
	run := func(cmd string, env []string) string {
		t.Helper()
		c := exec.Command("bash", "-c", cmd)
		c.Env = env
		b, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s\nfailed: %v\n%s", cmd, err, b)
		}
		return string(b)
	}
	runCLIFlow(t, text, env, run)
	flows := map[string][]string{"REST": section(text, "--- REST (curl) ---")}
	if grpcurl := findGrpcurl(); grpcurl != "" {
		env = append(env, "PATH="+filepath.Dir(grpcurl)+":"+os.Getenv("PATH"))
		flows["gRPC"] = section(text, "--- gRPC (grpcurl) ---")
	} else if os.Getenv("CI") != "" {
		t.Fatal("grpcurl not found (make tools installs it into bin/)")
	}
	for name, cmds := range flows {
		if len(cmds) < 4 {
			t.Fatalf("%s: too few commands printed: %q", name, cmds)
		}
		// 1: create; 2: validate; 3: revoke; 4: validate again.
		var created struct {
			Secret string `json:"secret"`
			Key    struct {
				ID string `json:"id"`
			} `json:"key"`
		}
		if err := json.Unmarshal([]byte(run(cmds[0], env)), &created); err != nil || created.Secret == "" || created.Key.ID == "" {
			t.Fatalf("%s create printed no secret/id: %v", name, err)
		}
		kenv := append(env, "KS_KEY="+created.Secret, "KS_KEY_ID="+created.Key.ID)
		if got := run(cmds[1], kenv); !strings.Contains(got, "CODE_VALID") {
			t.Fatalf("%s validate: %s", name, got)
		}
		if got := run(cmds[2], kenv); !strings.Contains(strings.ToLower(got), "revoked") {
			t.Fatalf("%s revoke: %s", name, got)
		}
		if got := run(cmds[3], kenv); !strings.Contains(got, "CODE_REVOKED") {
			t.Fatalf("%s validate after revoke: %s", name, got)
		}
	}
}

// runCLIFlow runs the CLI commands dev printed, in order, as a reader
// pastes them: exports apply to the next commands, the secret is copied
// from create's answer. import reaches the private cluster by the
// DATABASE_URL printed.
func runCLIFlow(t *testing.T, text string, env []string, run func(string, []string) string) {
	t.Helper()
	if !regexp.MustCompile(`Postgres\s+postgres://`).MatchString(text) {
		t.Errorf("dev did not print its cluster's DATABASE_URL:\n%s", text)
	}
	cmds := section(text, "--- CLI (docs/cli.md) ---")
	env = append(env, "KEYSERVICE_TEST_BINARY_IS_KEYSERVICE=1", "DATABASE_URL=", "KEYSERVICE_ADDR=", "KEYSERVICE_KEY=")
	ran := map[string]string{}
	for _, cmd := range cmds {
		if v, ok := strings.CutPrefix(cmd, "export "); ok {
			name, val, _ := strings.Cut(v, "=")
			env = append(env, name+"="+strings.Trim(val, "'"))
			continue
		}
		out := run(cmd, env)
		switch {
		case strings.Contains(cmd, "keys create"):
			m := regexp.MustCompile(`(?m)^secret: (\S+)$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("%s\nprinted no secret:\n%s", cmd, out)
			}
			env = append(env, "KS_KEY="+m[1])
			ran["create"] = out
		case strings.Contains(cmd, "keys validate"):
			ran["validate"] = out
		case strings.Contains(cmd, " import "):
			ran["import"] = out
		case strings.Contains(cmd, "keys list") && strings.Contains(cmd, "--json"):
			ran["list"] = out
		}
	}
	if l, _, _ := strings.Cut(ran["validate"], "\n"); l != "VALID" {
		t.Errorf("CLI validate answered %q:\n%s", l, ran["validate"])
	}
	if !strings.Contains(ran["import"], "imported 1 keys") {
		t.Errorf("CLI import: %q", ran["import"])
	}
	if !strings.Contains(ran["list"], `"name": "legacy"`) || !strings.Contains(ran["list"], `"name": "demo"`) {
		t.Errorf("CLI list --json lacks the created and the imported key:\n%s", ran["list"])
	}
}

// section returns the commands printed after marker, up to the next
// section: continuation lines joined, comments and paste-here lines dropped.
func section(text, marker string) []string {
	_, rest, _ := strings.Cut(text, marker)
	var cmds []string
	cur := ""
	for _, line := range strings.Split(rest, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "# ---") {
			break
		}
		if line == "" || strings.HasPrefix(line, "#") || strings.Contains(line, "<secret>") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cmds = append(cmds, cur+line)
		cur = ""
	}
	return cmds
}

func findGrpcurl() string {
	if p, err := exec.LookPath("grpcurl"); err == nil {
		return p
	}
	// The repository's bin/, where `make tools` puts it.
	if p, err := filepath.Abs("../../bin/grpcurl"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
