package outcome_test

import (
	"os"
	"testing"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/outcome"
)

// TestEveryAPICodeHasARow: an enum value without a row would be answered
// with no status, no label and no docs line.
func TestEveryAPICodeHasARow(t *testing.T) {
	rows := map[outcome.Code]bool{}
	for _, r := range outcome.All() {
		if rows[r.Code] {
			t.Errorf("%s has two rows", r.Code)
		}
		rows[r.Code] = true
		if r.HTTP == 0 || r.Stage == 0 || r.Doc == "" {
			t.Errorf("%s: row incomplete: %+v", r.Code, r)
		}
		if n, ok := keyservicev1.Code_value["CODE_"+r.Name]; !ok || outcome.Code(n) != r.Code {
			t.Errorf("%s is %d here; the API's CODE_%s is %d (%v)", r.Name, r.Code, r.Name, n, ok)
		}
	}
	for n := range keyservicev1.Code_name {
		if c := outcome.Code(n); c != outcome.Unspecified && !rows[c] {
			t.Errorf("CODE_%s has no row in the outcome table", c)
		}
	}
}

// TestStagesComeInOrder: the table is the order of precedence, so a stage
// never comes back after a later one.
func TestStagesComeInOrder(t *testing.T) {
	last := outcome.Stage(0)
	for _, r := range outcome.All() {
		if r.Stage < last {
			t.Errorf("%s (stage %d) after stage %d", r.Code, r.Stage, last)
		}
		last = r.Stage
	}
	if got := outcome.Of(outcome.Code(999)).Code; got != outcome.NotFound {
		t.Errorf("an unknown code is answered as %s, want NOT_FOUND (fail closed)", got)
	}
}

// TestDocsTableIsGenerated: docs/api.md shows the table as it is here
// (make generate writes it).
func TestDocsTableIsGenerated(t *testing.T) {
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := outcome.UpdateDocs(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if want != string(b) {
		t.Fatal("docs/api.md's table of answers is not the outcome table's: run make generate")
	}
}
