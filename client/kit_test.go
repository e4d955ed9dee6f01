package client_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// docsBlock is the fenced block of docs/clients.md that starts with first.
func docsBlock(t *testing.T, fence, first string) string {
	t.Helper()
	docs, err := os.ReadFile("../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(docs), "```"+fence+"\n"+first)
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatalf("docs/clients.md has no %s block starting %q", fence, first)
	}
	return first + block
}

// TestDocsShowTheExamplesWordForWord: the Go snippets of docs/clients.md
// are the examples that compile in example_test.go.
func TestDocsShowTheExamplesWordForWord(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := os.ReadFile("../docs/clients.md")
	for _, name := range []string{"Go verify", "Go middleware"} {
		_, rest, ok := strings.Cut(string(src), "// --- docs/clients.md: "+name+" ---\n")
		snippet, _, ok2 := strings.Cut(rest, "\t// --- end ---")
		if !ok || !ok2 || !strings.Contains(string(docs), snippet) {
			t.Errorf("docs/clients.md does not show the %s example word for word", name)
		}
	}
}

// TestGoKitFromAFreshModule: a new module, the main.go of docs/clients.md
// and the docs' three commands verify a key against a real server, as a
// new user outside this repository would.
func TestGoKitFromAFreshModule(t *testing.T) {
	t.Parallel()
	r := start(t)
	adm, actx := adminOf(t, r)
	k := create(t, adm, actx, &keyservicev1.CreateKeyRequest{Owner: "fresh-module", Scopes: []string{"read"}})
	dir := t.TempDir()
	mainGo := docsBlock(t, "go", "// main.go\n")
	cmds := docsBlock(t, "sh", "go mod edit")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		repo, _ := filepath.Abs("..")
		cmd.Env = append(os.Environ(), "KEYSERVICE_REPO="+repo, "KEYSERVICE_ADDR="+r.srv.GRPCAddr().String(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("go", "mod", "init", "example.com/app")
	// The docs' commands, the last one (go run .) with the key to verify.
	out := run("bash", "-euo", "pipefail", "-c", strings.TrimSpace(cmds)+" "+k.GetSecret())
	if !strings.Contains(out, "valid key of fresh-module") {
		t.Fatalf("the fresh module printed:\n%s", out)
	}
	if strings.Contains(out, k.GetSecret()) {
		t.Fatal("the program printed the key")
	}
}
