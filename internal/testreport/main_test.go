package main

import (
	"strings"
	"testing"
)

// TestSkipsAreListedWithTheirReasons: a skipped test is named with the
// reason it logged; a failed one prints its output and fails the run.
func TestSkipsAreListedWithTheirReasons(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: nginx not installed\n"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:3: boom\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB"}`,
		`{"Action":"fail","Package":"p","Elapsed":1.5}`,
		`{"Action":"start","Package":"q"}`,
		`{"Action":"pass","Package":"q","Elapsed":0.25}`,
	}, "\n")
	var out strings.Builder
	code := run(strings.NewReader(in), &out)
	for _, want := range []string{"p TestA: a_test.go:9: nginx not installed", "b_test.go:3: boom", "FAIL\tp\t1.500s", "ok  \tq\t0.250s", "1 tests skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if code != 1 {
		t.Errorf("exit %d with a failed test, want 1", code)
	}
	var quiet strings.Builder
	if code := run(strings.NewReader(`{"Action":"start","Package":"q"}`+"\n"), &quiet); code != 1 || !strings.Contains(quiet.String(), "no result") {
		t.Errorf("a package with no result: exit %d, %q", code, quiet.String())
	}
}
