package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// snippetCommand is one command of a README block and what its answer
// must contain (the "# →" lines after it).
type snippetCommand struct {
	line   string
	expect []string
}

// readmeBlock returns the commands of the first sh block after heading.
func readmeBlock(t *testing.T, readme, heading string) []snippetCommand {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q", heading)
	}
	rest := readme[i:]
	start := strings.Index(rest, "```sh\n")
	if start < 0 {
		t.Fatalf("no sh block after %q", heading)
	}
	rest = rest[start+len("```sh\n"):]
	block := rest[:strings.Index(rest, "```")]
	var cmds []snippetCommand
	var cur strings.Builder
	for _, l := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(l, "# → "):
			cmds[len(cmds)-1].expect = append(cmds[len(cmds)-1].expect, strings.TrimPrefix(l, "# → "))
		case strings.HasPrefix(l, "#"), strings.TrimSpace(l) == "":
		case strings.HasSuffix(l, "\\"):
			cur.WriteString(strings.TrimSuffix(l, "\\"))
		default:
			cur.WriteString(l)
			cmds = append(cmds, snippetCommand{line: cur.String()})
			cur.Reset()
		}
	}
	return cmds
}

func noSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// TestREADMELifecycleSnippetsRun runs the README's key lifecycle curl and
// grpcurl commands word for word (only the addresses are the test
// server's), and checks each answer holds what the README says.
func TestREADMELifecycleSnippetsRun(t *testing.T) {
	t.Parallel()
	curl := repoTool(t, "curl", "apt-get install curl")
	grpcurl := repoTool(t, "grpcurl", "make tools installs it into bin/")
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	e := start(t)
	path := filepath.Dir(grpcurl) + string(os.PathListSeparator) + filepath.Dir(curl) + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, heading := range []string{"### Lifecycle with curl", "### Lifecycle with grpcurl", "### Retrying admin writes (request_id)"} {
		cmds := readmeBlock(t, readme, heading)
		if len(cmds) < 4 {
			t.Fatalf("%s: only %d commands", heading, len(cmds))
		}
		created, err := e.grpc.CreateKey(admin(context.Background()), &keyservicev1.CreateKeyRequest{Name: "readme", Owner: "acme", Scopes: []string{"read"}})
		if err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "PATH="+path, "KEYSERVICE_ADMIN_TOKEN="+adminToken,
			"KS_KEY="+created.GetSecret(), "KS_KEY_ID="+created.GetKey().GetId())
		for _, c := range cmds {
			line := strings.ReplaceAll(c.line, "127.0.0.1:8080", e.srv.HTTPAddr().String())
			line = strings.ReplaceAll(line, "127.0.0.1:9090", e.srv.GRPCAddr().String())
			cmd := exec.Command("bash", "-c", line)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %s: %v\n%s", heading, c.line, err, out)
			}
			for _, want := range c.expect {
				if !strings.Contains(noSpace(string(out)), noSpace(want)) {
					t.Errorf("%s: %s\nanswered %s\nwant it to contain %s", heading, c.line, out, want)
				}
			}
		}
	}
}
