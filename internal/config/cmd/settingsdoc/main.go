// Command settingsdoc writes the settings table, made from the
// declarations in internal/config, between the markers of a markdown file
// (docs/configuration.md): go run ./internal/config/cmd/settingsdoc FILE.
package main

import (
	"fmt"
	"os"

	"github.com/keyservice/keyservice/internal/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: settingsdoc FILE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "settingsdoc:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := config.UpdateDocs(string(old))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if doc == string(old) {
		return nil
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
