package server_test

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// The documentation's shell snippets run as tests: TestDocsShellSnippetsRun
// pastes every runnable shell block of README.md and of each docs/*.md into
// one bash session per document, block after block in document order, as a
// reader would, against a real server of its own (a fresh database).
//
// What a block is:
//
//   - A fenced block whose language is sh, bash, shell or console is a shell
//     snippet. It runs unless the line just before its fence (blank lines
//     aside) is a skip marker that gives a reason:
//
//     <!-- doc-test: skip: needs a Kubernetes cluster -->
//
//     Use it for what a test cannot do (make run itself, podman, kubectl,
//     a transcript of a measured run), never to hide a failing example.
//   - A fenced block without a language is text (output, a diagram). One that
//     looks like commands (a line starting with "$ ", curl, grpcurl,
//     keyservice, ./bin/, make, export) fails the test: tag it sh, and run
//     or mark it.
//   - Other languages (go, js, nginx, yaml...) are checked by their own tests
//     where one is named beside them, not here.
//
// How a block runs:
//
//   - A command is a line, with its "\" continuation lines and any here
//     document it opens. Comment lines are not sent. A "# → text" line after
//     a command says what its output (stdout and stderr) must contain,
//     compared without white space. Every command must exit 0.
//   - The session is one bash (with pipefail), so variables, exports and cd
//     carry from block to block, as in the reader's terminal. It starts as a
//     new terminal would: PATH and a HOME of its own, none of the test
//     process's other variables.
//
// What the reader has and the test provides (nothing else is rewritten):
//
//   - The working directory stands for the repository after `make tools`
//     and `make run`: .data/postgres.admin-token holds the admin token,
//     bin/keyservice is the binary built from ./cmd/keyservice (built only
//     when a document uses it), bin/grpcurl is grpcurl.
//   - The dev server's addresses, 127.0.0.1:8080 (HTTP) and 127.0.0.1:9090
//     (gRPC), are replaced by the test server's.
//   - A placeholder the reader fills from what `make run` printed is replaced
//     by its value; docPlaceholders lists them, and any other <...> that
//     looks like a placeholder fails the test.

// docPlaceholders are what a reader copies from `make run`'s output.
func docPlaceholders(e *env) map[string]string {
	return map[string]string{"<the DATABASE_URL make run printed>": e.dbURL}
}

var (
	shellLangs      = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}
	skipMarker      = regexp.MustCompile(`^<!-- doc-test: skip: \S.*-->$`)
	commandLike     = regexp.MustCompile(`^(\$ |curl |grpcurl |keyservice |\./bin/|make |export )`)
	placeholderLike = regexp.MustCompile(`<[A-Za-z][A-Za-z0-9_ .-]*>`)
	usesBinary      = regexp.MustCompile(`(^|[\s/])keyservice (keys|audit|import|migrate)\b`)
)

// docBlock is a fenced block of a document.
type docBlock struct {
	line int // of the opening fence, 1-based
	lang string
	skip bool
	text string
}

func docBlocks(t *testing.T, name, doc string) []docBlock {
	t.Helper()
	var blocks []docBlock
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimLeft(lines[i], " ") // a block in a list item is indented
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		indent := strings.Repeat(" ", len(lines[i])-len(fence))
		b := docBlock{line: i + 1}
		if f := strings.Fields(strings.TrimPrefix(fence, "```")); len(f) > 0 {
			b.lang = f[0]
		}
		for j := i - 1; j >= 0; j-- {
			if p := strings.TrimSpace(lines[j]); p != "" {
				b.skip = skipMarker.MatchString(p)
				if strings.HasPrefix(p, "<!-- doc-test") && !b.skip {
					t.Errorf("%s:%d: %q is not a marker this test knows (<!-- doc-test: skip: reason -->)", name, j+1, p)
				}
				break
			}
		}
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[i], " "), "```"); i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: block never closed", name, b.line)
		}
		b.text = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

// docCommand is one command of a block and what its output must contain.
type docCommand struct {
	text   string
	expect []string
}

var heredoc = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)

func docCommands(block string) []docCommand {
	var cmds []docCommand
	var cur []string
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case len(cur) == 0 && strings.HasPrefix(l, "# → "):
			if len(cmds) > 0 {
				cmds[len(cmds)-1].expect = append(cmds[len(cmds)-1].expect, strings.TrimPrefix(l, "# → "))
			}
			continue
		case len(cur) == 0 && (strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == ""):
			continue
		}
		cur = append(cur, l)
		if m := heredoc.FindStringSubmatch(l); m != nil {
			for i++; i < len(lines); i++ {
				cur = append(cur, lines[i])
				if strings.TrimSpace(lines[i]) == m[1] {
					break
				}
			}
		}
		if !strings.HasSuffix(cur[len(cur)-1], "\\") {
			cmds = append(cmds, docCommand{text: strings.Join(cur, "\n")})
			cur = nil
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

// docDocuments are README.md and docs/*.md, paths relative to this package.
func docDocuments(t *testing.T) []string {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(docs)
	return append([]string{"../../README.md"}, docs...)
}

func TestDocsShellSnippetsRun(t *testing.T) {
	t.Parallel()
	var binOnce sync.Once
	var binPath string
	var binErr error
	binDir := t.TempDir() // the parent's: it outlives every document's run
	keyserviceBinary := func(t *testing.T) string {
		binOnce.Do(func() {
			binPath = filepath.Join(binDir, "keyservice")
			out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/keyservice").CombinedOutput()
			if err != nil {
				binErr = fmt.Errorf("go build: %v\n%s", err, out)
			}
		})
		if binErr != nil {
			t.Fatal(binErr)
		}
		return binPath
	}
	ran := 0
	for _, path := range docDocuments(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path, "../../")
		var run []docBlock
		for _, b := range docBlocks(t, name, string(raw)) {
			switch {
			case shellLangs[b.lang] && !b.skip:
				run = append(run, b)
			case b.lang == "":
				for _, l := range strings.Split(b.text, "\n") {
					if commandLike.MatchString(strings.TrimSpace(l)) {
						t.Errorf("%s:%d: an untagged block with a command (%q): tag it sh, and let it run or mark it", name, b.line, l)
						break
					}
				}
			}
		}
		ran += len(run)
		if len(run) == 0 {
			continue
		}
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			runDocument(t, name, run, keyserviceBinary)
		})
	}
	if ran == 0 {
		t.Fatal("no runnable shell block in README.md or docs/")
	}
}

func runDocument(t *testing.T, name string, blocks []docBlock, keyserviceBinary func(*testing.T) string) {
	grpcurl := repoTool(t, "grpcurl", "make tools installs it into bin/")
	repoTool(t, "curl", "apt-get install curl") // the pages say a reader needs these
	repoTool(t, "jq", "apt-get install jq")
	e := start(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".data", "postgres.admin-token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(grpcurl, filepath.Join(dir, "bin", "grpcurl")); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if usesBinary.MatchString(b.text) {
			if err := os.Symlink(keyserviceBinary(t), filepath.Join(dir, "bin", "keyservice")); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	sh := newDocShell(t, dir)
	fill := docPlaceholders(e)
	for _, b := range blocks {
		cmds := docCommands(b.text)
		if len(cmds) == 0 {
			t.Errorf("%s:%d: a runnable block with no command", name, b.line)
		}
		for _, c := range cmds {
			text := strings.ReplaceAll(c.text, "127.0.0.1:8080", e.srv.HTTPAddr().String())
			text = strings.ReplaceAll(text, "127.0.0.1:9090", e.srv.GRPCAddr().String())
			for k, v := range fill {
				text = strings.ReplaceAll(text, k, v)
			}
			if p := placeholderLike.FindString(text); p != "" {
				t.Fatalf("%s:%d: %q is a placeholder the test cannot fill (docPlaceholders lists those it can)", name, b.line, p)
			}
			out, rc := sh.run(t, text)
			if rc != 0 {
				t.Fatalf("%s:%d: %s\nexited %d:\n%s", name, b.line, c.text, rc, out)
			}
			for _, want := range c.expect {
				if !strings.Contains(noSpace(out), noSpace(want)) {
					t.Errorf("%s:%d: %s\nanswered %s\nwant it to contain %s", name, b.line, c.text, out, want)
				}
			}
		}
	}
}

// docShell is one bash session, fed commands as a reader pastes them.
type docShell struct {
	stdin io.WriteCloser
	lines chan string
	mark  string
}

func newDocShell(t *testing.T, dir string) *docShell {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = dir
	// A reader's new terminal: none of the test's KEYSERVICE_*, DATABASE_URL...
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir(), "LANG=C.UTF-8"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout.(io.Writer)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &docShell{stdin: stdin, lines: make(chan string, 64), mark: "__doc_test_" + rand.Text() + "__"}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if _, rc := s.run(t, "exec 2>&1; set -o pipefail"); rc != 0 {
		t.Fatal("bash did not start")
	}
	return s
}

// run sends one command and returns what it printed and its exit status.
// A command still running after two minutes is a hang, not a slow answer.
func (s *docShell) run(t *testing.T, command string) (string, int) {
	t.Helper()
	if _, err := fmt.Fprintf(s.stdin, "%s\nprintf '\\n%s %%d\\n' $?\n", command, s.mark); err != nil {
		t.Fatalf("writing to bash: %v", err)
	}
	var out strings.Builder
	hang := time.NewTimer(2 * time.Minute)
	defer hang.Stop()
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("bash exited during %s:\n%s", command, out.String())
			}
			if rest, found := strings.CutPrefix(l, s.mark+" "); found {
				rc, _ := strconv.Atoi(rest)
				return strings.TrimSuffix(out.String(), "\n"), rc
			}
			out.WriteString(l + "\n")
		case <-hang.C:
			t.Fatalf("%s: no end after 2 minutes:\n%s", command, out.String())
		}
	}
}
