package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTypeScriptKit builds the TypeScript kit's tarball (make ts-kit),
// installs it into an empty project with the README's command, and runs
// clients/typescript/test/e2e.mjs from there against a real server:
// verifyKey's answers and errors, and the fetch wrapper and the
// Express/Connect middleware over real HTTP (valid, missing, wrong,
// revoked, scope missing, limited; identity passed on, key not).
func TestTypeScriptKit(t *testing.T) {
	t.Parallel()
	node := repoTool(t, "node", ".ci/run installs Node.js")
	npm := repoTool(t, "npm", ".ci/run installs npm")
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", "-s", "-C", "../..", "ts-kit").CombinedOutput()
	if err != nil {
		t.Fatalf("make ts-kit: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	tarball := lines[len(lines)-1]
	dir := t.TempDir()
	install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--prefer-offline", tarball)
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install %s: %v\n%s", tarball, err, out)
	}
	script, err := os.ReadFile("../../clients/typescript/test/e2e.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "e2e.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	run := exec.CommandContext(ctx, node, "e2e.mjs")
	run.Dir = dir
	run.Env = append(os.Environ(), "KEYSERVICE_ADDR="+e.srv.GRPCAddr().String(), "KEYSERVICE_ADMIN_TOKEN="+adminToken, "KEYSERVICE_TOKEN=")
	out, err = run.CombinedOutput()
	if err != nil {
		t.Fatalf("node e2e.mjs: %v\n%s", err, out)
	}
	var res struct {
		OK     bool     `json:"ok"`
		Checks []string `json:"checks"`
	}
	lines = strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || !res.OK {
		t.Fatalf("e2e.mjs output: %s", out)
	}
	for _, want := range []string{"verify_valid", "verify_wrong", "verify_malformed", "verify_revoked", "verify_scope", "error_unavailable", "fetch", "express"} {
		if !slices.Contains(res.Checks, want) {
			t.Errorf("e2e.mjs did not pass %q (passed %v)", want, res.Checks)
		}
	}
}

// TestTypeScriptKitReadmeIsWhatTheTestRuns: the README's snippets (and
// docs/clients.md's verify) are in e2e.mjs word for word.
func TestTypeScriptKitReadmeIsWhatTheTestRuns(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../clients/typescript/README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../clients/typescript/test/e2e.mjs")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"verify", "fetch", "express"} {
		_, rest, ok := strings.Cut(string(src), "// --- README: "+name+" ---\n")
		snippet, _, ok2 := strings.Cut(rest, "// --- end ---")
		snippet = dedent(snippet)
		if !ok || !ok2 || !strings.Contains(string(readme), snippet) {
			t.Errorf("clients/typescript/README.md does not show e2e.mjs's %s snippet word for word:\n%s", name, snippet)
		}
		if docs, _ := os.ReadFile("../../docs/clients.md"); name == "verify" && !strings.Contains(string(docs), snippet) {
			t.Errorf("docs/clients.md does not show e2e.mjs's verify snippet word for word")
		}
	}
}

// dedent removes the indentation every line of s shares.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " "))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}
