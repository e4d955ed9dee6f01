package server_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayersPointOneWay checks the arrows of docs/architecture.md on the
// direct imports of every package: transports → service → validate →
// store, validate free of any database driver, and the bench tool out of
// reach of the service.
func TestLayersPointOneWay(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/keyservice/keyservice/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/keyservice/keyservice/"
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[strings.TrimPrefix(f[0], mod)] = f[1:]
	}
	forbidden := map[string][]string{
		// package: what it must not import (prefixes)
		"internal/validate":   {"github.com/jackc/", mod + "internal/service", mod + "internal/middleware", mod + "internal/gateway", mod + "internal/server", mod + "internal/config"},
		"internal/store":      {mod + "internal/validate", mod + "internal/service", mod + "internal/middleware", mod + "internal/gateway", mod + "internal/server"},
		"internal/service":    {"github.com/jackc/", mod + "internal/gateway", mod + "internal/server", mod + "internal/config"},
		"internal/middleware": {"github.com/jackc/", mod + "internal/service", mod + "internal/gateway", mod + "internal/server", mod + "internal/validate", mod + "internal/store"},
		"internal/gateway":    {"github.com/jackc/", mod + "internal/service", mod + "internal/server", mod + "internal/validate", mod + "internal/store"},
		"internal/config":     {mod + "internal/server", mod + "internal/service"},
	}
	for pkg, bad := range forbidden {
		imps, ok := imports[pkg]
		if !ok {
			t.Fatalf("package %s not found", pkg)
		}
		for _, imp := range imps {
			for _, b := range bad {
				if strings.HasPrefix(imp, b) {
					t.Errorf("%s imports %s", pkg, imp)
				}
			}
		}
	}
	for pkg, imps := range imports {
		if strings.HasPrefix(pkg, "internal/bench") || pkg == "cmd/keybench" {
			continue
		}
		for _, imp := range imps {
			if imp == mod+"internal/bench" {
				t.Errorf("%s imports the bench tool", pkg)
			}
		}
	}
}
