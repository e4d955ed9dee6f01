package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/keyservice/keyservice/internal/cli"
)

// runCLI runs the command line with stdin and returns its exit code and
// what it printed.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.MainIO(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestEveryCommandHasItsOwnHelp: each command's --help exits 0 and lists
// its own flags, and none of another command's (import's help used to
// print serve's 60 settings).
func TestEveryCommandHasItsOwnHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args       []string
		want, lack []string
	}{
		{[]string{"--help"}, []string{"serve", "migrate", "dev", "import", "keys", "keyspaces", "credentials", "audit", "Exit codes"}, []string{"--grpc-addr"}},
		{[]string{"import", "--help"}, []string{"--skip-bad", "--database-url", "--json", "key_hash"},
			[]string{"--grpc-addr", "--admin-tokens", "KEYSERVICE_KEY_PREFIX", "--addr", "--request-id"}},
		{[]string{"keys", "--help"}, []string{"create", "validate", "rotate", "--addr", "KEYSERVICE_ADMIN_TOKEN"}, []string{"--grpc-addr", "--owner"}},
		{[]string{"keys", "create", "--help"}, []string{"--name", "--owner", "--format", "--keyspace", "--rate-limit", "--allow-cidr", "--request-id", "--addr", "--json"},
			[]string{"--grace", "--page-size", "--key-stdin", "--no-expiry", "--grpc-addr"}},
		{[]string{"keys", "update", "--help"}, []string{"--no-expiry", "--any-address", "--default-rate-limit", "--rate-limit"}, []string{"--owner", "--format", "--grace"}},
		{[]string{"keys", "rotate", "--help"}, []string{"--grace", "--format", "--request-id"}, []string{"--owner", "--scope", "--page-size"}},
		{[]string{"keys", "validate", "--help"}, []string{"--key-stdin", "KEYSERVICE_KEY", "--scope", "--keyspace", "--cost", "--client-ip", "--json", "VALID"},
			[]string{"--request-id", "--owner", "--name"}},
		{[]string{"keys", "list", "--help"}, []string{"--owner", "--keyspace", "--query", "--state", "--page-size", "--all"}, []string{"--request-id", "--name"}},
		{[]string{"keys", "get", "--help"}, []string{"--json", "--addr"}, []string{"--request-id", "--owner"}},
		{[]string{"keys", "revoke", "--help"}, []string{"--request-id"}, []string{"--owner", "--grace"}},
		{[]string{"audit", "list", "--help"}, []string{"--key", "--actor", "--page-size"}, []string{"--owner", "--request-id"}},
		{[]string{"help", "keys", "create"}, []string{"--format"}, []string{"--grace"}},
		{[]string{"keyspaces", "--help"}, []string{"create", "get", "list", "update", "--addr", "KEYSERVICE_ADMIN_TOKEN"}, []string{"--request-id", "--prefix"}},
		{[]string{"keyspaces", "create", "--help"}, []string{"--prefix", "--default-format", "--default-rate", "--default-expiry", "--default-scopes", "--json"},
			[]string{"--clear-default-rate", "--name", "--request-id", "--page-size"}},
		{[]string{"keyspaces", "update", "--help"}, []string{"--name", "--default-rate", "--clear-default-rate", "--clear-default-expiry", "--clear-default-scopes"},
			[]string{"--prefix", "--request-id"}},
		{[]string{"keyspaces", "list", "--help"}, []string{"--page-size", "--page-token", "--all"}, []string{"--prefix", "--owner"}},
		{[]string{"keyspaces", "get", "--help"}, []string{"--json", "--addr"}, []string{"--prefix", "--page-size"}},
		{[]string{"credentials", "--help"}, []string{"create", "list", "revoke", "KEYSERVICE_ADMIN_TOKEN"}, []string{"--permissions"}},
		{[]string{"credentials", "create", "--help"}, []string{"--permissions", "keys.validate", "credentials.write", "--all-keyspaces", "--keyspaces", "--expires-in", "--expires-at", "--rate"},
			[]string{"--page-size", "--request-id", "--prefix"}},
		{[]string{"credentials", "list", "--help"}, []string{"--page-size", "--all"}, []string{"--permissions"}},
		{[]string{"credentials", "revoke", "--help"}, []string{"--addr"}, []string{"--permissions", "--request-id"}},
	} {
		code, out, errOut := runCLI(t, "", tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d\n%s", tc.args, code, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: help lacks %q", tc.args, w)
			}
		}
		for _, l := range tc.lack {
			if strings.Contains(out, l) {
				t.Errorf("%v: help lists %q, another command's", tc.args, l)
			}
		}
	}
	// The server commands keep their flag and environment help (Go flag
	// syntax, each with its variable), also through `help`.
	for _, args := range [][]string{{"serve", "--help"}, {"serve", "-h"}, {"help", "serve"}, {"migrate", "--help"}, {"dev", "--help"}} {
		code, _, errOut := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(errOut, "KEYSERVICE_GRPC_ADDR") || !strings.Contains(errOut, "-database-url") {
			t.Errorf("%v: exit %d, help %.200q", args, code, errOut)
		}
	}
	if _, _, errOut := runCLI(t, "", "dev", "--help"); !strings.Contains(errOut, "-data-dir") {
		t.Error("dev --help lacks -data-dir")
	}
}

// TestCommandLineMistakes: a mistake in the command line exits 2 with a
// message naming it, before any connection or token is needed.
func TestCommandLineMistakes(t *testing.T) {
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "")
	t.Setenv("KEYSERVICE_KEY", "")
	t.Setenv("KEYSERVICE_ADDR", "127.0.0.1:1") // nothing listens: a call would fail with 1
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"keys"}, "Usage"},
		{[]string{"keys", "frob"}, `unknown command "frob"`},
		{[]string{"audit", "frob"}, `unknown command "frob"`},
		{[]string{"keys", "create", "--name", "x", "--owner", "o", "--format", "fancy"}, "--format"},
		{[]string{"keys", "create", "--name", "x", "--owner", "o", "--rate-limit", "0/1m"}, "limit must be between 1 and"},
		{[]string{"keys", "create", "--name", "x", "--owner", "o", "--rate-limit", "10/48h"}, "period must be between 1ms and 24h"},
		{[]string{"keys", "create", "--name", "x", "--owner", "o", "--rate-limit", "ten/1m"}, "limit/period"},
		{[]string{"keys", "create", "--name", "x", "--owner", "o", "--meta", "novalue"}, "--meta"},
		{[]string{"keys", "create", "--name", "x", "--owner", "o", "extra"}, "takes no arguments"},
		{[]string{"keys", "create", "--nmae", "x"}, "unknown flag: --nmae"},
		{[]string{"keys", "rotate", "id", "--format", "fancy"}, "--format"},
		{[]string{"keys", "rotate", "id", "--owner", "o"}, "unknown flag: --owner"},
		{[]string{"keys", "get", "a", "b"}, "one key id"},
		{[]string{"keys", "list", "extra"}, "takes no arguments"},
		{[]string{"keys", "list", "--page-size", "many"}, "--page-size"},
		{[]string{"keys", "list", "--state", "gone"}, "--state"},
		{[]string{"keys", "validate", "sk_in_argv"}, "takes no arguments"},
		{[]string{"keys", "validate"}, "no key to validate"},
		{[]string{"keys", "validate", "--key-stdin"}, "held no key"},
		{[]string{"audit", "list", "extra"}, "takes no arguments"},
		{[]string{"keyspaces"}, "Usage"},
		{[]string{"keyspaces", "frob"}, `unknown command "frob"`},
		{[]string{"keyspaces", "create", "billing"}, "--prefix is required"},
		{[]string{"keyspaces", "create", "billing", "--prefix", "bill", "--default-format", "fancy"}, "--default-format"},
		{[]string{"keyspaces", "create", "billing", "--prefix", "bill", "--default-rate", "0/1m"}, "--default-rate"},
		{[]string{"keyspaces", "create", "--prefix", "bill"}, "one keyspace name"},
		{[]string{"keyspaces", "update", "id"}, "nothing to change"},
		{[]string{"keyspaces", "update", "id", "--default-expiry", "1h", "--clear-default-expiry"}, "contradict"},
		{[]string{"keyspaces", "update", "id", "--prefix", "x"}, "unknown flag: --prefix"},
		{[]string{"keyspaces", "get"}, "one keyspace id or name"},
		{[]string{"keyspaces", "list", "extra"}, "takes no arguments"},
		{[]string{"credentials", "frob"}, `unknown command "frob"`},
		{[]string{"credentials", "create", "ci", "--permissions", "keys.delete", "--all-keyspaces"}, `unknown permission "keys.delete"`},
		{[]string{"credentials", "create", "ci", "--permissions", "keys.read", "--all-keyspaces", "--keyspaces", "a"}, "not both"},
		{[]string{"credentials", "create", "ci", "--permissions", "keys.read"}, "--all-keyspaces or --keyspaces"},
		{[]string{"credentials", "create", "ci", "--permissions", "keys.read", "--keyspaces", ","}, "--all-keyspaces or --keyspaces"},
		{[]string{"credentials", "create", "ci", "--permissions", "keys.read", "--all-keyspaces", "--expires-at", "soon"}, "--expires-at"},
		{[]string{"credentials", "revoke"}, "one credential id"},
		{[]string{"credentials", "list", "extra"}, "takes no arguments"},
		{[]string{"import"}, "one file"},
		{[]string{"import", "--grpc-addr", ":1", "f"}, "unknown flag: --grpc-addr"},
		{[]string{"serve", "--no-such-flag"}, "no-such-flag"},
	} {
		code, _, errOut := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestAKeyInTheWrongPlaceIsNotEchoed: a key typed as an argument (where
// none is read) is refused with exit 2, and the error, which ends up in
// logs, does not repeat it.
func TestAKeyInTheWrongPlaceIsNotEchoed(t *testing.T) {
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "")
	const secret = "ks_SecretPastedHere0123456789abcdef"
	for _, args := range [][]string{
		{"keys", "validate", secret},
		{"keys", "list", secret},
		{"audit", "list", secret},
		{"keys", secret},
		{secret},
	} {
		code, out, errOut := runCLI(t, "", args...)
		if code != 2 || strings.Contains(errOut+out, "SecretPastedHere") {
			t.Errorf("%v: exit %d; output repeats the key: %q", args[:len(args)-1], code, errOut+out)
		}
	}
}
