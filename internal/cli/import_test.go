package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyservice/keyservice/internal/cli"
	"github.com/keyservice/keyservice/internal/testdb"
)

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func runImport(t *testing.T, dbURL, file string, extra ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	t.Setenv("DATABASE_URL", dbURL)
	code := cli.Main(context.Background(), append(append([]string{"import"}, extra...), file), &out, &errOut)
	return code, out.String(), errOut.String()
}

func countRows(t *testing.T, dbURL, where string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM api_keys WHERE "+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImportIsIdempotentAndRefusesBadFiles: good lines are imported once
// however often the file is imported; a file with bad lines imports
// nothing and names each bad line and why, unless --skip-bad.
func TestImportIsIdempotentAndRefusesBadFiles(t *testing.T) {
	u, _ := testdb.New(t)
	dir := t.TempDir()
	good := []string{
		fmt.Sprintf(`{"key_hash":%q,"name":"billing","owner":"acme","scopes":["read"],"metadata":{"env":"prod"},"hint":"sk-...abcd","allowed_cidrs":["10.0.0.0/8"]}`, sha("sk-1")),
		fmt.Sprintf(`{"key_hash":%q,"name":"old","owner":"acme","expires_at":"2020-01-01T00:00:00Z","rate_limit":{"limit":10,"period":"60s"}}`, sha("sk-2")),
		fmt.Sprintf(`{"key_hash":%q,"name":"gone","owner":"acme","revoked_at":"2024-05-01T10:00:00Z"}`, sha("sk-3")),
		fmt.Sprintf(`{"key_hash":%q,"name":"repeat","owner":"acme"}`, sha("sk-1")), // the same hash again
	}
	file := filepath.Join(dir, "keys.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(good, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runImport(t, u, file)
	if code != 0 || !strings.Contains(out, "imported 3 keys; 1 already present") {
		t.Fatalf("first import: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = runImport(t, u, file)
	if code != 0 || !strings.Contains(out, "imported 0 keys; 4 already present") {
		t.Fatalf("second import: exit %d, %q", code, out)
	}
	if n := countRows(t, u, "true"); n != 3 {
		t.Fatalf("%d rows after importing twice, want 3", n)
	}
	if n := countRows(t, u, "name = 'billing' AND allowed_cidrs = '{10.0.0.0/8}' AND enabled"); n != 1 {
		t.Fatalf("the imported key's allowed_cidrs were not stored")
	}
	if n := countRows(t, u, "revoked_at IS NOT NULL AND hint = 'imported'"); n != 1 {
		t.Fatalf("revoked key with the default hint: %d", n)
	}
	if n := countRows(t, u, "rate_limit = 10 AND expires_at < now() AND hint = 'imported'"); n != 1 {
		t.Fatalf("expired key with its limit: %d", n)
	}

	bad := []string{
		fmt.Sprintf(`{"key_hash":%q,"name":"new","owner":"acme"}`, sha("sk-4")),
		`{"key_hash":"xyz","name":"n","owner":"o"}`,
		`not json`,
		fmt.Sprintf(`{"key_hash":%q,"owner":"o"}`, sha("sk-5")),
		fmt.Sprintf(`{"key_hash":%q,"name":"n","owner":"o","colour":"red"}`, sha("sk-6")),
		fmt.Sprintf(`{"key_hash":%q,"name":"n","owner":"o","scopes":["a,b"]}`, sha("sk-7")),
		fmt.Sprintf(`{"key_hash":%q,"name":"n","owner":"o","revoked_at":"2999-01-01T00:00:00Z"}`, sha("sk-8")),
		fmt.Sprintf(`{"key_hash":%q,"name":"n","owner":"o","hint":"sk-9"}`, sha("sk-9")),
	}
	badFile := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(badFile, []byte(strings.Join(bad, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runImport(t, u, badFile)
	if code != 1 {
		t.Fatalf("bad file: exit %d, want 1", code)
	}
	for _, want := range []string{"line 2: key_hash", "line 3: not a JSON object", "line 4: name", "line 5:", "colour", "line 6: scopes[0]", "line 7: revoked_at", "line 8: hint", "nothing imported"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("report lacks %q:\n%s", want, errOut)
		}
	}
	if n := countRows(t, u, "true"); n != 3 {
		t.Fatalf("a bad file imported rows: %d", n)
	}
	code, out, _ = runImport(t, u, badFile, "--skip-bad")
	if code != 0 || !strings.Contains(out, "imported 1 keys") || !strings.Contains(out, "7 bad lines skipped") {
		t.Fatalf("--skip-bad: exit %d, %q", code, out)
	}
	if code, _, _ := runImport(t, u, filepath.Join(dir, "missing.jsonl")); code != 1 {
		t.Fatalf("missing file: exit %d", code)
	}
	if code, _, _ := runImport(t, u, ""); code != 1 && code != 2 {
		t.Fatalf("empty file name: exit %d", code)
	}
}

// TestImportOfALargeGeneratedFile: 25,000 keys (three transactions of the
// import) from standard input, all stored once, and all there on a second
// run as duplicates.
func TestImportOfALargeGeneratedFile(t *testing.T) {
	u, _ := testdb.New(t)
	var b strings.Builder
	for i := 0; i < 25_000; i++ {
		fmt.Fprintf(&b, "{\"key_hash\":%q,\"name\":\"k-%d\",\"owner\":\"owner-%d\"}\n", sha(fmt.Sprintf("sk-%032x", i)), i, i%100)
	}
	file := filepath.Join(t.TempDir(), "large.jsonl")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runImport(t, u, file); code != 0 || !strings.Contains(out, "imported 25000 keys; 0 already") {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	if code, out, _ := runImport(t, u, file); code != 0 || !strings.Contains(out, "imported 0 keys; 25000 already") {
		t.Fatalf("again: exit %d, %q", code, out)
	}
	if n := countRows(t, u, "true"); n != 25_000 {
		t.Fatalf("%d rows, want 25000", n)
	}
}

// TestImportRefusesWhatRESTRefuses: a line with a field given twice (REST
// refuses duplicate JSON fields) is a bad line naming the field, whether
// it is one of CreateKey's or the import's own; a hint that is the full
// secret of another key (in the same file, or already stored), or that
// shows more of a key than a hint may, is a bad line; a hint of the shape
// keyservice makes itself is fine; printable text follows the API's rule.
func TestImportRefusesWhatRESTRefuses(t *testing.T) {
	u, _ := testdb.New(t)
	dir := t.TempDir()
	stored := "old-key-7777" // short secrets of some older format
	first := filepath.Join(dir, "first.jsonl")
	if err := os.WriteFile(first, []byte(fmt.Sprintf(`{"key_hash":%q,"name":"stored","owner":"acme"}`+"\n", sha(stored))), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runImport(t, u, first); code != 0 {
		t.Fatalf("first import: exit %d, %q, %q", code, out, errOut)
	}
	other := "legacy-key-0042"
	lines := []string{
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","name":"b"}`, sha("k-1")),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","key_hash":%q}`, sha("k-2"), sha("k-3")),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","hint":"x","hint":"y"}`, sha("k-4")),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","hint":%q}`, sha("k-5"), other),
		fmt.Sprintf(`{"key_hash":%q,"name":"other","owner":"acme"}`, sha(other)),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","hint":%q}`, sha("k-7"), stored),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","hint":"ks_npVyizZsgzzozoojrXsA2nyDiKYoIX0JqeOr"}`, sha("k-8")),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","hint":"ks_...Ab12"}`, sha("k-9")),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","metadata":{"team":"x\u202ey"}}`, sha("k-10")),
		fmt.Sprintf(`{"key_hash":%q,"name":"a","owner":"acme","hint":"sk-\u2028abc"}`, sha("k-11")),
	}
	file := filepath.Join(dir, "keys.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runImport(t, u, file)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{
		`line 1: "name" appears twice`,
		`line 2: "key_hash" appears twice`,
		`line 3: "hint" appears twice`,
		"line 4: hint: is the full secret of the key on line 5",
		"line 6: hint: is the full secret of a key already stored",
		"line 7: hint:",
		"line 9: metadata:",
		"line 10: hint:",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("report lacks %q:\n%s", want, errOut)
		}
	}
	for _, good := range []string{"line 5:", "line 8:"} {
		if strings.Contains(errOut, good) {
			t.Errorf("a good line reported bad (%s):\n%s", good, errOut)
		}
	}
	if strings.Contains(errOut, stored) || strings.Contains(errOut, other) {
		t.Fatalf("the report shows a secret:\n%s", errOut)
	}
	if n := countRows(t, u, "true"); n != 1 {
		t.Fatalf("a bad file imported rows: %d", n)
	}
}
