package cli_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/keys"
)

// withSigning configures the signed key format (the checksum format stays
// the default).
func withSigning(c *config.Config) {
	c.SigningKeys = []keys.SigningKey{{Kid: "k1", Secret: bytes.Repeat([]byte{7}, keys.MinSigningSecret)}}
}

// TestKeysCreateSignedAndValidate: `keys create --format signed` makes a
// signed key, and `keys validate` answers for it, reading the key from
// stdin or KEYSERVICE_KEY: VALID (exit 0) until revoked, then REVOKED
// (exit 3); MALFORMED, NOT_FOUND and INSUFFICIENT_SCOPE likewise.
func TestKeysCreateSignedAndValidate(t *testing.T) {
	t.Setenv("KEYSERVICE_ADDR", startServer(t, withSigning))
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	t.Setenv("KEYSERVICE_KEY", "")
	create := func(format string) (secret, id string) {
		t.Helper()
		code, out, errOut := runCLI(t, "", "keys", "create", "--name", "v-"+format, "--owner", "acme", "--scope", "read", "--format", format, "--json")
		var created struct {
			Secret string `json:"secret"`
			Key    struct {
				ID string `json:"id"`
			} `json:"key"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &created) != nil || created.Secret == "" {
			t.Fatalf("create --format %s: exit %d\n%s%s", format, code, out, errOut)
		}
		return created.Secret, created.Key.ID
	}
	signed, signedID := create("signed")
	checksum, _ := create("checksum")
	// The formats' shapes (api/keyservice/v1: FORMAT_SIGNED is
	// <signed prefix>_<kid>_..., FORMAT_CHECKSUM <prefix>_...).
	if !strings.HasPrefix(signed, "kss_k1_") {
		t.Errorf("--format signed made %q, not a signed key of kid k1", signed[:8])
	}
	if !strings.HasPrefix(checksum, "ks_") || strings.HasPrefix(checksum, "kss_") {
		t.Errorf("--format checksum made %q...", checksum[:4])
	}

	validate := func(stdin string, args ...string) (int, string) {
		t.Helper()
		code, out, errOut := runCLI(t, stdin, append([]string{"keys", "validate"}, args...)...)
		if code == 1 {
			t.Errorf("validate %v failed: %s", args, errOut)
		}
		if strings.Contains(out+errOut, signed) || strings.Contains(out+errOut, checksum) {
			t.Errorf("validate %v printed the key", args)
		}
		return code, out
	}
	firstLine := func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
	for _, tc := range []struct {
		name  string
		stdin string
		env   string
		args  []string
		code  int
		want  string
	}{
		{"signed from stdin", signed + "\n", "", []string{"--key-stdin"}, 0, "VALID"},
		{"checksum from env", "", checksum, nil, 0, "VALID"},
		{"scope held", signed, "", []string{"--key-stdin", "--scope", "read"}, 0, "VALID"},
		{"scope lacking", signed, "", []string{"--key-stdin", "--scope", "write"}, 3, "INSUFFICIENT_SCOPE"},
		{"garbage", "not-a-key\n", "", []string{"--key-stdin"}, 3, "MALFORMED"},
		{"stdin wins over env", "not-a-key\n", signed, []string{"--key-stdin"}, 3, "MALFORMED"},
	} {
		t.Setenv("KEYSERVICE_KEY", tc.env)
		code, out := validate(tc.stdin, tc.args...)
		if code != tc.code || firstLine(out) != tc.want {
			t.Errorf("%s: exit %d, answer %q; want exit %d, %s\n%s", tc.name, code, firstLine(out), tc.code, tc.want, out)
		}
	}
	t.Setenv("KEYSERVICE_KEY", "")
	// The answer's table has the key's record and budget; --json the whole answer.
	if code, out := validate(signed, "--key-stdin"); code != 0 || !strings.Contains(out, "budget: ") || !strings.Contains(out, signedID) || !strings.Contains(out, "RATE_LIMIT") {
		t.Errorf("validate's table: exit %d\n%s", code, out)
	}
	code, out := validate(signed, "--key-stdin", "--json", "--cost", "0")
	var answer struct {
		Valid bool   `json:"valid"`
		Code  string `json:"code"`
		Key   struct {
			ID string `json:"id"`
		} `json:"key"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &answer) != nil || !answer.Valid || answer.Code != "CODE_VALID" || answer.Key.ID != signedID {
		t.Errorf("validate --json: exit %d\n%s", code, out)
	}
	if code, _, e := runCLI(t, "", "keys", "revoke", signedID); code != 0 {
		t.Fatalf("revoke: exit %d %s", code, e)
	}
	if code, out := validate(signed, "--key-stdin"); code != 3 || firstLine(out) != "REVOKED" {
		t.Errorf("after revoke: exit %d\n%s", code, out)
	}
	if code, out := validate(signed, "--key-stdin", "--json"); code != 3 || !strings.Contains(out, `"code": "CODE_REVOKED"`) {
		t.Errorf("after revoke, --json: exit %d\n%s", code, out)
	}
	// A well-formed key that was never issued.
	other := "x"
	if strings.HasSuffix(checksum, "x") {
		other = "y" // a different last character, whatever the key's was
	}
	if code, out := validate(checksum[:len(checksum)-1]+other, "--key-stdin"); code != 3 || (firstLine(out) != "NOT_FOUND" && firstLine(out) != "MALFORMED") {
		t.Errorf("unknown key: exit %d\n%s", code, out)
	}
}

// column reads the cells of a tabwriter table by the header's offsets
// (a cell may hold spaces: "100/1m burst 200").
func column(t *testing.T, table, name string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	header := lines[0]
	start := strings.Index(header, name)
	if start < 0 || (start > 0 && header[start-1] != ' ') {
		t.Fatalf("no column %s in\n%s", name, table)
	}
	end := 1 << 30 // the last column runs to the end of the line
	if next := strings.IndexFunc(header[start+len(name):], func(r rune) bool { return r != ' ' }); next >= 0 {
		end = start + len(name) + next
	}
	var cells []string
	for _, l := range lines[1:] {
		if start >= len(l) {
			cells = append(cells, "")
			continue
		}
		cells = append(cells, strings.TrimSpace(l[start:min(end, len(l))]))
	}
	return cells
}

// TestKeyTableShowsLimitsAddressesAndRotation: the key table has columns
// for the rate limit, the allowed CIDRs and the rotation links, filled.
func TestKeyTableShowsLimitsAddressesAndRotation(t *testing.T) {
	t.Setenv("KEYSERVICE_ADDR", startServer(t))
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	code, out, e := runCLI(t, "", "keys", "create", "--name", "tbl", "--owner", "acme", "--rate-limit", "100/1m", "--burst", "200",
		"--allow-cidr", "10.0.0.0/8", "--allow-cidr", "2001:db8::/32")
	if code != 0 {
		t.Fatalf("create: exit %d\n%s", code, e)
	}
	_, table, _ := strings.Cut(out, "\n\n")
	if got := column(t, table, "RATE_LIMIT"); len(got) != 1 || got[0] != "100/1m burst 200" {
		t.Errorf("RATE_LIMIT %q\n%s", got, table)
	}
	if got := column(t, table, "ALLOWED_CIDRS"); len(got) != 1 || got[0] != "10.0.0.0/8,2001:db8::/32" {
		t.Errorf("ALLOWED_CIDRS %q\n%s", got, table)
	}
	id := column(t, table, "ID")[0]
	code, out, e = runCLI(t, "", "keys", "rotate", id, "--grace", "1h")
	if code != 0 {
		t.Fatalf("rotate: exit %d\n%s", code, e)
	}
	_, table, _ = strings.Cut(out, "\n\n")
	ids, from, to := column(t, table, "ID"), column(t, table, "ROTATED_FROM"), column(t, table, "ROTATED_TO")
	if len(ids) != 2 || ids[1] != id || from[0] != id || to[1] != ids[0] || from[1] != "-" || to[0] != "-" {
		t.Errorf("rotation links: ID %q FROM %q TO %q\n%s", ids, from, to, table)
	}
	// The new key keeps the limit and addresses; a key without its own
	// limit and addresses shows the default and any.
	if got := column(t, table, "RATE_LIMIT"); got[0] != "100/1m burst 200" {
		t.Errorf("rotated key's RATE_LIMIT %q", got)
	}
	code, out, _ = runCLI(t, "", "keys", "create", "--name", "plain", "--owner", "acme")
	_, table, _ = strings.Cut(out, "\n\n")
	if code != 0 || column(t, table, "RATE_LIMIT")[0] != "default" || column(t, table, "ALLOWED_CIDRS")[0] != "any" {
		t.Errorf("plain key's table:\n%s", table)
	}
}
