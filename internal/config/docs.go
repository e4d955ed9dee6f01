package config

import (
	"fmt"
	"strings"

	"github.com/keyservice/keyservice/internal/docmarkers"
)

// The markers around the generated part of docs/configuration.md.
const (
	DocsBegin = "<!-- settings:begin -->"
	DocsEnd   = "<!-- settings:end -->"
)

// Markdown is the generated part of docs/configuration.md: how each kind
// of value is written, and every setting with its flag, kind, rule,
// default and help, all from the declarations.
func Markdown() string {
	var b strings.Builder
	b.WriteString("<!-- Generated from internal/config/settings.go by `make generate`; edit the declarations, not this table. -->\n\n")
	b.WriteString("A flag given on the command line wins over its variable, which wins over the default.\n")
	b.WriteString("Surrounding white space in a variable's value (a trailing newline) is ignored.\n\n")
	b.WriteString("| kind | written as |\n|---|---|\n")
	seen := map[string]bool{}
	ss := Settings()
	for _, s := range ss {
		if !seen[s.Type] {
			seen[s.Type] = true
			fmt.Fprintf(&b, "| %s | %s |\n", s.Type, cell(s.Written))
		}
	}
	b.WriteString("\n| variable | flag | kind | allowed | default | meaning |\n|---|---|---|---|---|---|\n")
	for _, s := range ss {
		def := "none"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		help := s.Help
		if s.See != "" {
			help += " (" + s.See + ")"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | %s | %s | %s | %s |\n", s.Env, s.Flag, s.Type, cell(s.Rule), def, cell(help))
	}
	return b.String()
}

// cell escapes what would end a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// UpdateDocs puts Markdown between the markers of doc.
func UpdateDocs(doc string) (string, error) {
	return docmarkers.Replace(doc, DocsBegin, DocsEnd, Markdown())
}
