// Command outcomedoc writes the table of Validate's answers, made from
// internal/outcome, between the markers of a markdown file (docs/api.md):
// go run ./internal/outcome/cmd/outcomedoc FILE.
package main

import (
	"fmt"
	"os"

	"github.com/keyservice/keyservice/internal/outcome"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: outcomedoc FILE")
		os.Exit(2)
	}
	old, err := os.ReadFile(os.Args[1])
	if err == nil {
		var doc string
		if doc, err = outcome.UpdateDocs(string(old)); err == nil && doc != string(old) {
			err = os.WriteFile(os.Args[1], []byte(doc), 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outcomedoc:", err)
		os.Exit(1)
	}
}
