package layout_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/keyservice/keyservice/"

// pkg is what go list says of one package of the module.
type pkg struct {
	ImportPath string
	Imports    []string // direct, without tests
	Deps       []string // every package it depends on, without tests
}

// listModule runs go list -deps over the whole module, once per test run.
func listModule(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", mod+"...")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// root is the module's directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found from the test's directory: %v", err)
	}
	return dir
}

func hasPrefix(list []string, prefix string) (string, bool) {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return s, true
		}
	}
	return "", false
}

// TestCoreDependsOnNoDriver checks, on go list -deps (every package a
// package needs, not only the ones it names), that the packages the
// validation path and the handlers are built on never pull in the database
// driver, the store, or a layer above them; and that nothing outside the
// bench tool depends on it.
func TestCoreDependsOnNoDriver(t *testing.T) {
	pkgs := listModule(t)
	const jackc = "github.com/jackc/"
	forbidden := map[string][]string{
		// package: what it must not depend on, directly or not (prefixes)
		"internal/apikey":     {jackc, mod + "internal/store", mod + "internal/validate", mod + "internal/service", mod + "internal/config", "google.golang.org/grpc"},
		"internal/caller":     {jackc, mod + "internal/"},
		"internal/validate":   {jackc, mod + "internal/store", mod + "internal/service", mod + "internal/middleware", mod + "internal/gateway", mod + "internal/server", mod + "internal/config", mod + "internal/ratelimit"},
		"internal/service":    {jackc, mod + "internal/store", mod + "internal/gateway", mod + "internal/server", mod + "internal/config"},
		"internal/config":     {jackc, mod + "internal/store", mod + "internal/server", mod + "internal/service", mod + "internal/ratelimit"},
		"internal/store":      {mod + "internal/validate", mod + "internal/service", mod + "internal/middleware", mod + "internal/gateway", mod + "internal/server", mod + "internal/ratelimit", mod + "internal/caller"},
		"internal/middleware": {jackc, mod + "internal/service", mod + "internal/gateway", mod + "internal/server", mod + "internal/validate", mod + "internal/store", mod + "internal/ratelimit"},
		"internal/gateway":    {jackc, mod + "internal/service", mod + "internal/server", mod + "internal/validate", mod + "internal/store"},
		"internal/ratelimit":  {jackc, mod + "internal/service", mod + "internal/middleware", mod + "internal/validate", mod + "internal/store"},
	}
	for name, bad := range forbidden {
		p, ok := pkgs[mod+name]
		if !ok {
			t.Fatalf("package %s not found", name)
		}
		for _, b := range bad {
			if d, ok := hasPrefix(p.Deps, b); ok && d != mod+name {
				t.Errorf("%s depends on %s (go list -deps)", name, d)
			}
		}
	}
	for path, p := range pkgs {
		if strings.HasPrefix(path, mod+"internal/bench") || path == mod+"cmd/keybench" {
			continue
		}
		if slices.Contains(p.Deps, mod+"internal/bench") {
			t.Errorf("%s depends on the bench tool", path)
		}
	}
}

// diagram is the package diagram of docs/architecture.md: its nodes (id to
// the import path, or path prefix, that opens the node's label) and its
// arrows.
type diagram struct {
	nodes  map[string]string
	arrows map[string][]string
}

var (
	nodeRe  = regexp.MustCompile(`(\w+)\[\(?"([^"<]*)(?:<br/>[^"]*)?"\)?\]`)
	arrowRe = regexp.MustCompile(`^\s*(\w+)\s*(?:-->|-\.->)\s*(\w+)\s*$`)
)

// readDiagram parses the first mermaid block after "## Packages".
func readDiagram(t *testing.T) diagram {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, after, ok := strings.Cut(doc, "## Packages")
	if !ok {
		t.Fatal(`docs/architecture.md has no "## Packages" section`)
	}
	_, after, ok = strings.Cut(after, "```mermaid\n")
	if !ok {
		t.Fatal("the Packages section has no mermaid diagram")
	}
	block, _, _ := strings.Cut(after, "```")
	d := diagram{nodes: map[string]string{}, arrows: map[string][]string{}}
	for _, line := range strings.Split(block, "\n") {
		for _, m := range nodeRe.FindAllStringSubmatch(line, -1) {
			path := strings.TrimSpace(m[2])
			if strings.HasPrefix(path, "internal/") || strings.HasPrefix(path, "api/") || strings.HasPrefix(path, "cmd/") {
				path = mod + path
			}
			if prev, ok := d.nodes[m[1]]; ok && prev != path {
				t.Fatalf("node %s is %s and %s", m[1], prev, path)
			}
			d.nodes[m[1]] = path
		}
		bare := nodeRe.ReplaceAllString(line, "$1")
		if m := arrowRe.FindStringSubmatch(bare); m != nil {
			d.arrows[m[1]] = append(d.arrows[m[1]], m[2])
		} else if strings.Contains(bare, "->") {
			t.Fatalf("unreadable arrow in the package diagram: %q (write one arrow per line: a --> b)", line)
		}
	}
	for from, tos := range d.arrows {
		for _, id := range append([]string{from}, tos...) {
			if _, ok := d.nodes[id]; !ok {
				t.Fatalf("arrow names node %s, which has no label", id)
			}
		}
	}
	return d
}

// reaches is the set of nodes id reaches by the diagram's arrows.
func (d diagram) reaches(id string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		for _, to := range d.arrows[n] {
			if !seen[to] {
				seen[to] = true
				walk(to)
			}
		}
	}
	walk(id)
	return seen
}

// TestArchitectureDocDrawsTheImports holds docs/architecture.md's package
// diagram to the code: each arrow is a direct import; from each package
// the arrows reach exactly the drawn packages it depends on (go list
// -deps), so a missing arrow, a stale one, or a dependency the doc denies
// (the driver under validate, say) fails; and every package of
// internal/ is drawn unless nothing drawn depends on it (a test helper).
func TestArchitectureDocDrawsTheImports(t *testing.T) {
	pkgs := listModule(t)
	d := readDiagram(t)
	pathOf := func(id string) string { return d.nodes[id] }
	isPkg := func(path string) bool { _, ok := pkgs[path]; return ok }
	for id, path := range d.nodes {
		if strings.HasPrefix(path, mod) && !isPkg(path) {
			t.Errorf("node %s: %s is not a package of the module", id, path)
		}
	}
	for from, tos := range d.arrows {
		p, ok := pkgs[pathOf(from)]
		if !ok {
			t.Errorf("arrow from %s: %s is not a package of the module", from, pathOf(from))
			continue
		}
		for _, to := range tos {
			if _, ok := hasPrefix(p.Imports, pathOf(to)); !ok {
				t.Errorf("the doc draws %s --> %s, but %s does not import %s", from, to, pathOf(from), pathOf(to))
			}
		}
	}
	ids := make([]string, 0, len(d.nodes))
	for id := range d.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, from := range ids {
		p, ok := pkgs[pathOf(from)]
		if !ok {
			continue
		}
		drawn := d.reaches(from)
		for _, to := range ids {
			if to == from {
				continue
			}
			_, real := hasPrefix(p.Deps, pathOf(to))
			switch {
			case real && !drawn[to]:
				t.Errorf("%s depends on %s (go list -deps), but no arrows lead from %s to %s in docs/architecture.md", pathOf(from), pathOf(to), from, to)
			case drawn[to] && !real:
				t.Errorf("docs/architecture.md's arrows lead from %s to %s, but %s does not depend on %s", from, to, pathOf(from), pathOf(to))
			}
		}
	}
	drawnPath := map[string]bool{}
	for _, path := range d.nodes {
		drawnPath[path] = true
	}
	for path := range pkgs {
		if !strings.HasPrefix(path, mod+"internal/") || drawnPath[path] {
			continue
		}
		for _, id := range ids {
			p := pkgs[pathOf(id)]
			if slices.Contains(p.Imports, path) && !strings.HasPrefix(path, pathOf(id)+"/") {
				t.Errorf("%s imports %s, which docs/architecture.md does not draw", pathOf(id), path)
			}
		}
	}
}

// TestArchitectureDocNamesRealFiles checks that every Go file and directory
// docs/architecture.md names (in backquotes) exists.
func TestArchitectureDocNamesRealFiles(t *testing.T) {
	root := root(t)
	b, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	// A full path (`internal/x/y.go`) sets the directory for the bare file
	// names after it on the same line (`, z.go`).
	full := regexp.MustCompile("^(?:internal|cmd|api|db|migrations)/[^`\\s]*$")
	bare := regexp.MustCompile(`^[\w.]+\.go$`)
	tick := regexp.MustCompile("`([^`]+)`")
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		dir := ""
		for _, m := range tick.FindAllStringSubmatch(line, -1) {
			f := m[1]
			switch {
			case full.MatchString(f):
				dir = f
				if strings.HasSuffix(f, ".go") {
					dir = filepath.Dir(f)
				}
			case bare.MatchString(f) && dir != "":
				f = filepath.Join(dir, f)
			default:
				continue
			}
			if strings.ContainsAny(f, "*{") {
				continue
			}
			n++
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("docs/architecture.md names %s, which does not exist", f)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d file names in docs/architecture.md; is the pattern still right?", n)
	}
	// The diagrams name files short, under internal/: validate/batch.go.
	short := regexp.MustCompile(`(?:^|[\s>"(])([a-z]+/[a-z_]+\.go)\b`)
	for _, m := range short.FindAllStringSubmatch(string(b), -1) {
		_, errShort := os.Stat(filepath.Join(root, "internal", m[1]))
		_, errFull := os.Stat(filepath.Join(root, m[1]))
		if errShort != nil && errFull != nil {
			t.Errorf("docs/architecture.md names %s, which is neither internal/%s nor a file of the module", m[1], m[1])
		}
	}
}
