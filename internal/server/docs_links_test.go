package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docsPending are pages other work writes; a link to one is allowed while
// it does not exist yet, and checked like any other once it does.
var docsPending = map[string]string{
	"docs/cli.md": "the CLI reference (issue 20 item 6)",
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`^#{1,6} +(.+?) *$`)
	slugDrop  = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// docOutsideBlocks is the text of a page outside its fenced blocks.
func docOutsideBlocks(doc string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " "), "```") {
			in = !in
			continue
		}
		if !in {
			out = append(out, l)
		}
	}
	return out
}

// docAnchors are the anchors GitHub makes for a page's headings.
func docAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	for _, l := range docOutsideBlocks(doc) {
		m := mdHeading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		slug := strings.ReplaceAll(slugDrop.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		a := slug
		for n := 1; anchors[a]; n++ {
			a = fmt.Sprintf("%s-%d", slug, n)
		}
		anchors[a] = true
	}
	return anchors
}

// TestDocsLinksResolve: every relative link of README.md and docs/*.md
// names a file of the repository, and every #anchor a heading of its page,
// so a newcomer following them never lands on nothing.
func TestDocsLinksResolve(t *testing.T) {
	t.Parallel()
	for _, path := range docDocuments(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path, "../../")
		for _, l := range docOutsideBlocks(string(raw)) {
			for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				dest := path
				if file != "" {
					dest = filepath.Join(filepath.Dir(path), file)
				}
				rel, _ := filepath.Rel("../..", dest)
				body, err := os.ReadFile(dest)
				if err != nil {
					if _, pending := docsPending[filepath.ToSlash(rel)]; !pending {
						t.Errorf("%s: link %s: no file %s", name, target, rel)
					}
					continue
				}
				if anchor != "" && strings.HasSuffix(dest, ".md") && !docAnchors(string(body))[anchor] {
					t.Errorf("%s: link %s: %s has no heading for #%s", name, target, rel, anchor)
				}
			}
		}
	}
}

// TestDocsShowTheTestedExamplesWordForWord: the Go caller of
// docs/clients.md and the Caddy and nginx configurations of
// docs/gateways.md are the ones their tests run (with the test's addresses
// put back as the page writes them).
func TestDocsShowTheTestedExamplesWordForWord(t *testing.T) {
	t.Parallel()
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	callers := read("callers_test.go")
	_, fn, _ := strings.Cut(callers, "\nfunc validateKey(")
	fn, _, _ = strings.Cut(fn, "\n}\n")
	caddy := strings.NewReplacer("{{.Front}}", "api.example.com", "{{.Keyservice}}", "keyservice:8080", "{{.Upstream}}", "app:8000").Replace(caddySnippet)
	var nginx []string
	for _, l := range strings.Split(strings.ReplaceAll(nginxSnippet, "{{.Keyservice}}", "127.0.0.1:8080"), "\n") {
		nginx = append(nginx, strings.TrimPrefix(l, "    "))
	}
	for page, want := range map[string][]string{
		"../../docs/clients.md":  {"func validateKey(" + fn + "\n}\n"},
		"../../docs/gateways.md": {caddy, strings.Join(nginx, "\n")},
	} {
		doc := read(page)
		for _, w := range want {
			if !strings.Contains(doc, w) {
				t.Errorf("%s does not show, word for word:\n%s", strings.TrimPrefix(page, "../../"), w)
			}
		}
	}
}
