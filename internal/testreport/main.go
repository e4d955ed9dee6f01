// Command testreport reads `go test -json` on stdin and prints what
// `go test` prints for the packages (ok, FAIL, and the output of what
// failed), then every skipped test with its reason, so that a skip is
// never silent: make test pipes the suite through it. It exits 1 when a
// test or a package failed (or the input ended without a package's
// result), 0 otherwise.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action     string
	ImportPath string // build-output and build-fail
	Package    string
	Test       string
	Elapsed    float64
	Output     string
}

type key struct{ pkg, test string }

func main() { os.Exit(run(os.Stdin, os.Stdout)) }

func run(in io.Reader, out io.Writer) int {
	output := map[key][]string{} // the lines of each running test, and each package's own
	var skipped []string
	failed, started, ended := false, map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // not an event (a build error line): show it
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "start":
			started[e.Package] = true
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "build-fail":
			failed = true
		case "output":
			output[k] = append(output[k], e.Output)
		case "skip":
			if e.Test != "" {
				skipped = append(skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason(output[k])))
			} else {
				fmt.Fprintf(out, "?   \t%s\t[no test files]\n", e.Package)
				ended[e.Package] = true
			}
			delete(output, k)
		case "pass":
			if e.Test == "" {
				fmt.Fprintf(out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
				ended[e.Package] = true
			}
			delete(output, k)
		case "fail":
			failed = true
			if e.Test != "" {
				fmt.Fprint(out, strings.Join(output[k], ""))
			} else {
				fmt.Fprint(out, strings.Join(output[k], ""))
				fmt.Fprintf(out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
				ended[e.Package] = true
			}
			delete(output, k)
		}
	}
	for p := range started {
		if !ended[p] {
			fmt.Fprintf(out, "FAIL\t%s\t(no result: the run ended before it)\n", p)
			failed = true
		}
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		fmt.Fprintf(out, "\n%d tests skipped (each says why; under CI=true a test that needs a missing tool fails instead):\n", len(skipped))
		for _, s := range skipped {
			fmt.Fprintln(out, "  "+s)
		}
	}
	if failed {
		return 1
	}
	return 0
}

// reason is the last line a skipped test logged before its SKIP line.
func reason(lines []string) string {
	r := "(no reason given)"
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		r = t
	}
	return r
}
