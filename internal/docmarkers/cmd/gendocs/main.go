// Command gendocs writes a table made from code between the markers of a
// docs page: `gendocs settings docs/configuration.md` (internal/config's
// declarations), `gendocs outcomes docs/api.md` (internal/outcome's
// table). make generate runs both.
package main

import (
	"fmt"
	"os"

	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/docmarkers"
	"github.com/keyservice/keyservice/internal/outcome"
)

func main() {
	tables := map[string]func(string) (string, error){
		"settings": config.UpdateDocs,
		"outcomes": outcome.UpdateDocs,
	}
	if len(os.Args) != 3 || tables[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: gendocs settings|outcomes FILE")
		os.Exit(2)
	}
	if err := docmarkers.Rewrite(os.Args[2], tables[os.Args[1]]); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
