package server_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// pythonKitChecks are the checks clients/python/tests/e2e.py must report
// as passed (it prints {"ok", "checks", "failed"}); a check the script
// stopped running fails here too.
var pythonKitChecks = []string{
	"installed", "no_shadowing", "stubs_bundled", "googleapis_coexists", "readme_snippet",
	"verify_valid", "verify_wrong", "verify_malformed", "verify_revoked", "verify_insufficient_scope",
	"verify_cost_zero", "result_frozen", "unavailable_retried", "unavailable_cost_not_retried",
	"verify_with_caller_token", "client_repr_hides_token", "verify_bad_caller_token",
	"wsgi_valid", "wsgi_bearer_any_case", "wsgi_wrong", "wsgi_malformed", "wsgi_revoked", "wsgi_missing", "wsgi_not_bearer",
	"wsgi_insufficient_scope", "wsgi_forbidden", "wsgi_limited_first", "wsgi_limited", "wsgi_limited_retry_after",
	"wsgi_apikey_valid", "wsgi_apikey_wrong", "wsgi_apikey_missing", "wsgi_unavailable", "wsgi_bad_caller_token",
	"wsgi_usage_exceeded",
	"asgi_valid", "asgi_bearer_any_case", "asgi_wrong", "asgi_malformed", "asgi_revoked", "asgi_missing", "asgi_not_bearer",
	"asgi_insufficient_scope", "asgi_forbidden", "asgi_limited_first", "asgi_limited", "asgi_limited_retry_after",
	"asgi_apikey_valid", "asgi_apikey_wrong", "asgi_apikey_missing", "asgi_unavailable", "asgi_bad_caller_token",
	"asgi_scope_untouched", "asgi_loop_not_blocked", "asgi_lifespan_passes",
	"asgi_websocket_refused_close", "asgi_websocket_refused_http", "asgi_websocket_valid",
}

// pythonKitInstall is the install the kit's README shows, from a fresh venv
// on Debian's python3 with its grpcio and protobuf, offline.
var pythonKitInstall = [][]string{
	{"/usr/bin/python3", "-m", "venv", "--system-site-packages", ".venv"},
	{".venv/bin/pip", "install", "--no-index", "--no-build-isolation", "./clients/python"},
}

// TestPythonKit installs clients/python (keyservice-client) the way its
// README says, into a fresh venv, and runs clients/python/tests/e2e.py with
// the venv's python from outside the repository against a real server:
// verify_key's answers and errors, retries, and the WSGI (over real HTTP)
// and ASGI middleware's statuses and headers (the kit contract).
func TestPythonKit(t *testing.T) {
	t.Parallel()
	const py = "/usr/bin/python3" // Debian's packages are for this interpreter
	_, err := os.Stat(py)
	needs(t, err == nil && exec.Command(py, "-c", "import grpc, google.protobuf").Run() == nil, "python3-grpcio and python3-protobuf for /usr/bin/python3")
	needs(t, exec.Command(py, "-c", "import ensurepip, venv").Run() == nil, "python3-venv for /usr/bin/python3")
	needs(t, exec.Command(py, "-c", "import setuptools, wheel").Run() == nil, "python3-setuptools and python3-wheel for /usr/bin/python3")
	needs(t, exec.Command(py, "-m", "pip", "--version").Run() == nil, "python3-pip for /usr/bin/python3")

	// A copy of clients/python as checked out, without what an earlier
	// in-tree pip build left (build/, *.egg-info): setuptools packs a stale
	// build/lib into the next wheel, and the test writes nothing into the
	// checkout.
	root := t.TempDir()
	copyTree(t, "../../clients/python", filepath.Join(root, "clients", "python"), func(name string) bool {
		return name == "build" || name == "__pycache__" || strings.HasSuffix(name, ".egg-info")
	})
	env := []string{"PIP_CONFIG_FILE=/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1"}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "PYTHONPATH" || name == "PYTHONHOME" || name == "VIRTUAL_ENV" || strings.HasPrefix(name, "PIP_") || strings.HasPrefix(name, "KEYSERVICE_") {
			continue
		}
		env = append(env, kv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, args := range pythonKitInstall {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir, cmd.Env = root, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	e := start(t)
	work := t.TempDir() // outside the repository and the source copy: only the installed package is importable
	cmd := exec.CommandContext(ctx, filepath.Join(root, ".venv/bin/python"), filepath.Join(root, "clients/python/tests/e2e.py"))
	cmd.Dir = work
	cmd.Env = append(env, "KEYSERVICE_ADDR="+e.srv.GRPCAddr().String(), "KEYSERVICE_ADMIN_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), adminToken) {
		t.Errorf("the kit's test printed the admin token")
	}
	if err != nil {
		t.Fatalf("python kit: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		OK     bool            `json:"ok"`
		Checks map[string]bool `json:"checks"`
		Failed []string        `json:"failed"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("python kit: last line is not its JSON report: %v\n%s", err, out)
	}
	var bad []string
	for _, name := range pythonKitChecks {
		if !res.Checks[name] {
			bad = append(bad, name)
		}
	}
	sort.Strings(bad)
	if !res.OK || len(bad) > 0 || len(res.Failed) > 0 {
		t.Fatalf("python kit: checks not passed: %v\nfailures: %s\n%s", bad, strings.Join(res.Failed, "\n  "), out)
	}
}

// TestPythonKitReadmeIsWhatTheTestsRun: the kit README's verify snippet is
// the code e2e.py runs, word for word, and its install commands are the
// ones TestPythonKit runs.
func TestPythonKitReadmeIsWhatTheTestsRun(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../clients/python/README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../clients/python/tests/e2e.py")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(src), "# --- README: verify ---\n")
	snippet, _, ok2 := strings.Cut(rest, "# --- end ---")
	if !ok1 || !ok2 || !strings.Contains(string(readme), "```python\n"+snippet+"```") {
		t.Errorf("clients/python/README.md does not show e2e.py's verify snippet word for word:\n%s", snippet)
	}
	for _, args := range pythonKitInstall {
		if c := strings.Join(args, " "); !strings.Contains(string(readme), c+"\n") {
			t.Errorf("clients/python/README.md does not show the install command %q", c)
		}
	}
}

// copyTree copies the regular files under src to dst, leaving out the
// files and directories skip names.
func copyTree(t *testing.T, src, dst string, skip func(name string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && skip(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
