package cli

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestDocsNameEveryCommandAndFlag: docs/cli.md names every command and
// every flag the CLI declares (the server commands' flags are the
// settings, documented with them), so a new flag cannot go undocumented.
func TestDocsNameEveryCommandAndFlag(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := c.CommandPath()
		if c.HasParent() && !strings.Contains(doc, path[len("keyservice "):]) {
			t.Errorf("docs/cli.md does not name %q", path)
		}
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !strings.Contains(doc, "`--"+f.Name) {
				t.Errorf("docs/cli.md does not document %s --%s", path, f.Name)
			}
		})
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(doc, "`--"+f.Name) {
				t.Errorf("docs/cli.md does not document %s --%s", path, f.Name)
			}
		})
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(newRoot(io.Discard, io.Discard))
}
