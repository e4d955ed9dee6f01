package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// keyspaceJSON is a keyspace as --json prints it.
type keyspaceJSON struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	Prefix           string `json:"prefix"`
	DefaultFormat    string `json:"default_format"`
	DefaultRateLimit *struct {
		Limit  string `json:"limit"`
		Period string `json:"period"`
	} `json:"default_rate_limit"`
	DefaultExpiry *string  `json:"default_expiry"`
	DefaultScopes []string `json:"default_scopes"`
}

// runOK runs a command that must succeed and returns its standard output.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, e := runCLI(t, "", args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s%s", args, code, out, e)
	}
	return out
}

// decode reads --json output into v.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestKeyspacesCommands: create sends every field its flags give, get
// finds a keyspace by id or name, list follows pages, and update sends
// only the fields of the flags given (the others stay as they were).
func TestKeyspacesCommands(t *testing.T) {
	t.Setenv("KEYSERVICE_ADDR", startServer(t, withSigning))
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	var created struct{ Keyspace keyspaceJSON }
	decode(t, runOK(t, "keyspaces", "create", "billing", "--prefix", "bill", "--default-format", "checksum", "--default-rate", "1000/1m",
		"--default-expiry", "720h", "--default-scopes", "read,write", "--json"), &created)
	ks := created.Keyspace
	if ks.ID == "" || ks.Name != "billing" || ks.Prefix != "bill" || ks.DefaultFormat != "FORMAT_CHECKSUM" || ks.DefaultRateLimit == nil ||
		ks.DefaultRateLimit.Limit != "1000" || ks.DefaultRateLimit.Period != "60s" || ks.DefaultExpiry == nil || *ks.DefaultExpiry != "2592000s" ||
		strings.Join(ks.DefaultScopes, ",") != "read,write" {
		t.Fatalf("created %+v", ks)
	}
	out := runOK(t, "keyspaces", "get", "billing")
	if column(t, out, "ID")[0] != ks.ID || column(t, out, "DEFAULT_RATE")[0] != "1000/1m" || column(t, out, "DEFAULT_EXPIRY")[0] != "720h" ||
		column(t, out, "DEFAULT_SCOPES")[0] != "read,write" || column(t, out, "DEFAULT_FORMAT")[0] != "checksum" {
		t.Errorf("get by name:\n%s", out)
	}
	var got struct{ Keyspace keyspaceJSON }
	if decode(t, runOK(t, "keyspaces", "get", ks.ID, "--json"), &got); got.Keyspace.Name != "billing" {
		t.Errorf("get by id: %+v", got.Keyspace)
	}
	runOK(t, "keyspaces", "create", "search", "--prefix", "srch")

	// Three keyspaces (the default one too), one a page.
	out = runOK(t, "keyspaces", "list", "--page-size", "1")
	if ids := column(t, out, "ID"); len(ids) != 3 || !strings.HasPrefix(ids[2], "more: --page-token ") {
		t.Errorf("one page:\n%s", out)
	}
	var all struct {
		Keyspaces     []keyspaceJSON
		NextPageToken string `json:"next_page_token"`
	}
	decode(t, runOK(t, "keyspaces", "list", "--page-size", "1", "--all", "--json"), &all)
	var names []string
	for _, k := range all.Keyspaces {
		names = append(names, k.Name)
	}
	if strings.Join(names, ",") != "default,billing,search" || all.NextPageToken != "" {
		t.Errorf("--all followed the pages to %v, next %q", names, all.NextPageToken)
	}

	// The mask is the flags given: a renamed keyspace keeps its defaults.
	var upd struct{ Keyspace keyspaceJSON }
	decode(t, runOK(t, "keyspaces", "update", ks.ID, "--name", "invoices", "--json"), &upd)
	if k := upd.Keyspace; k.Name != "invoices" || k.DefaultRateLimit == nil || k.DefaultExpiry == nil || len(k.DefaultScopes) != 2 || k.DefaultFormat != "FORMAT_CHECKSUM" {
		t.Errorf("update --name: %+v", k)
	}
	decode(t, runOK(t, "keyspaces", "update", ks.ID, "--clear-default-rate", "--default-scopes", "read", "--json"), &upd)
	if k := upd.Keyspace; k.Name != "invoices" || k.DefaultRateLimit != nil || k.DefaultExpiry == nil || strings.Join(k.DefaultScopes, ",") != "read" {
		t.Errorf("update --clear-default-rate --default-scopes read: %+v", k)
	}
	decode(t, runOK(t, "keyspaces", "update", ks.ID, "--clear-default-expiry", "--default-format", "signed", "--default-rate", "5/1s", "--json"), &upd)
	if k := upd.Keyspace; k.DefaultExpiry != nil || k.DefaultFormat != "FORMAT_SIGNED" || k.DefaultRateLimit == nil || k.DefaultRateLimit.Limit != "5" ||
		strings.Join(k.DefaultScopes, ",") != "read" || k.Name != "invoices" {
		t.Errorf("update --clear-default-expiry --default-format signed --default-rate 5/1s: %+v", k)
	}
	decode(t, runOK(t, "keyspaces", "update", ks.ID, "--clear-default-scopes", "--default-expiry", "1h", "--json"), &upd)
	if k := upd.Keyspace; len(k.DefaultScopes) != 0 || k.DefaultExpiry == nil || *k.DefaultExpiry != "3600s" || k.DefaultRateLimit == nil {
		t.Errorf("update --clear-default-scopes --default-expiry 1h: %+v", k)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"update", ks.ID}, 2, "nothing to change"},
		{[]string{"update", ks.ID, "--clear-default-rate=false"}, 2, "nothing to change"},
		{[]string{"update", ks.ID, "--default-rate", "1/1s", "--clear-default-rate"}, 2, "contradict"},
		{[]string{"update", ks.ID, "--name", ""}, 2, "--name is empty"},
		{[]string{"update", ks.ID, "--default-scopes", ""}, 2, "--default-scopes is empty"},
		{[]string{"update"}, 2, "one keyspace id"},
		{[]string{"create", "x"}, 2, "--prefix"},
		{[]string{"create", "x", "--prefix", "x", "--default-expiry", "soon"}, 2, "--default-expiry"},
		{[]string{"get", "nope"}, 1, "NotFound"},
		{[]string{"create", "billing2", "--prefix", "ks"}, 1, "InvalidArgument"},
	} {
		code, _, e := runCLI(t, "", append([]string{"keyspaces"}, tc.args...)...)
		if code != tc.code || !strings.Contains(e, tc.want) {
			t.Errorf("keyspaces %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, e, tc.code, tc.want)
		}
	}
}

// TestKeysInAKeyspace: --keyspace reaches create, list and validate, and
// the key's keyspace shows in get's table and in --json.
func TestKeysInAKeyspace(t *testing.T) {
	t.Setenv("KEYSERVICE_ADDR", startServer(t))
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	var ks struct{ Keyspace keyspaceJSON }
	decode(t, runOK(t, "keyspaces", "create", "billing", "--prefix", "bill", "--json"), &ks)
	type created struct {
		Secret string
		Key    struct {
			ID         string
			KeyspaceID string `json:"keyspace_id"`
		}
	}
	var in, def created
	decode(t, runOK(t, "keys", "create", "--name", "a", "--owner", "acme", "--keyspace", "billing", "--json"), &in)
	decode(t, runOK(t, "keys", "create", "--name", "b", "--owner", "acme", "--json"), &def)
	if in.Key.KeyspaceID != ks.Keyspace.ID || !strings.HasPrefix(in.Secret, "bill_") || def.Key.KeyspaceID == ks.Keyspace.ID || def.Key.KeyspaceID == "" {
		t.Fatalf("keys create --keyspace billing made a key of keyspace %q (%.5s…); without it, %q", in.Key.KeyspaceID, in.Secret, def.Key.KeyspaceID)
	}
	if out := runOK(t, "keys", "get", in.Key.ID); column(t, out, "KEYSPACE")[0] != ks.Keyspace.ID {
		t.Errorf("keys get shows no keyspace:\n%s", out)
	}
	out := runOK(t, "keys", "list", "--keyspace", "billing")
	if ids := column(t, out, "ID"); len(ids) != 1 || ids[0] != in.Key.ID || column(t, out, "KEYSPACE")[0] != ks.Keyspace.ID {
		t.Errorf("keys list --keyspace billing:\n%s", out)
	}
	if out := runOK(t, "keys", "list", "--keyspace", "default", "--json"); !strings.Contains(out, def.Key.ID) || strings.Contains(out, in.Key.ID) {
		t.Errorf("keys list --keyspace default --json:\n%s", out)
	}
	t.Setenv("KEYSERVICE_KEY", in.Secret)
	if code, out, e := runCLI(t, "", "keys", "validate", "--keyspace", "billing", "--cost", "0"); code != 0 || !strings.HasPrefix(out, "VALID") {
		t.Errorf("validate --keyspace billing: exit %d\n%s%s", code, out, e)
	}
	if code, out, e := runCLI(t, "", "keys", "validate", "--keyspace", "default", "--cost", "0"); code != 3 || !strings.HasPrefix(out, "NOT_FOUND") {
		t.Errorf("validate --keyspace default, a key of billing: exit %d\n%s%s", code, out, e)
	}
}

// TestCredentialsCommands: create prints the secret once (with its
// warning; in --json as secret), the credential works with what it was
// given and no more, list never shows a secret, revoke ends it; mistakes
// in the permissions or keyspaces are refused before any call.
func TestCredentialsCommands(t *testing.T) {
	t.Setenv("KEYSERVICE_ADDR", startServer(t))
	admin := "cli-admin-token-0123456789"
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", admin)
	var ks struct{ Keyspace keyspaceJSON }
	decode(t, runOK(t, "keyspaces", "create", "billing", "--prefix", "bill", "--json"), &ks)
	var inBilling, inDefault struct{ Key struct{ ID string } }
	decode(t, runOK(t, "keys", "create", "--name", "a", "--owner", "acme", "--keyspace", "billing", "--json"), &inBilling)
	decode(t, runOK(t, "keys", "create", "--name", "b", "--owner", "acme", "--json"), &inDefault)

	out := runOK(t, "credentials", "create", "ci-reader", "--permissions", "keys.read,audit.read", "--keyspaces", "billing",
		"--expires-in", "720h", "--rate", "100/1s")
	head, table, _ := strings.Cut(out, "\n\n")
	secret, ok := strings.CutPrefix(strings.Split(head, "\n")[0], "secret: ")
	if !ok || !strings.HasPrefix(secret, "kscred_") || strings.Count(out, secret) != 1 || !strings.Contains(head, "not shown again") {
		t.Fatalf("create did not print the secret once with its warning:\n%s", out)
	}
	id := column(t, table, "ID")[0]
	if column(t, table, "PERMISSIONS")[0] != "keys.read,audit.read" || column(t, table, "KEYSPACES")[0] != ks.Keyspace.ID ||
		column(t, table, "RATE")[0] != "100/1s" || column(t, table, "EXPIRES")[0] == "-" {
		t.Errorf("the created credential:\n%s", table)
	}
	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	var all struct {
		Secret     string
		Credential struct {
			Name         string
			AllKeyspaces bool   `json:"all_keyspaces"`
			ExpiresAt    string `json:"expires_at"`
		}
	}
	decode(t, runOK(t, "credentials", "create", "all-reader", "--permissions", "keys.read", "--all-keyspaces", "--expires-at", expires, "--json"), &all)
	if !strings.HasPrefix(all.Secret, "kscred_") || !all.Credential.AllKeyspaces || all.Credential.ExpiresAt != expires {
		t.Errorf("create --all-keyspaces --expires-at --json: %+v", all.Credential)
	}

	// The credential reads the keys of its keyspace, and may do no more.
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", secret)
	if out := runOK(t, "keys", "list", "--json"); !strings.Contains(out, inBilling.Key.ID) || strings.Contains(out, inDefault.Key.ID) {
		t.Errorf("ci-reader's keys list:\n%s", out)
	}
	if code, _, e := runCLI(t, "", "keys", "create", "--name", "c", "--owner", "acme", "--keyspace", "billing"); code != 1 || !strings.Contains(e, "PermissionDenied") {
		t.Errorf("ci-reader's keys create: exit %d %q", code, e)
	}
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", admin)

	// Refused before any call: nothing is created.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"x", "--permissions", "keys.read,keys.frob", "--all-keyspaces"}, `unknown permission "keys.frob"`},
		{[]string{"x", "--permissions", "keys.read", "--all-keyspaces", "--keyspaces", "billing"}, "not both"},
		{[]string{"x", "--permissions", "keys.read"}, "--all-keyspaces or --keyspaces"},
		{[]string{"x", "--all-keyspaces"}, "--permissions"},
		{[]string{"x", "--permissions", "keys.read", "--all-keyspaces", "--expires-in", "1h", "--expires-at", expires}, "not both"},
		{[]string{"x", "--permissions", "keys.read", "--all-keyspaces", "--expires-in", "-1h"}, "--expires-in"},
		{[]string{"x", "--permissions", "keys.read", "--all-keyspaces", "--rate", "fast"}, "--rate"},
		{[]string{"--permissions", "keys.read", "--all-keyspaces"}, "one credential name"},
	} {
		code, _, e := runCLI(t, "", append([]string{"credentials", "create"}, tc.args...)...)
		if code != 2 || !strings.Contains(e, tc.want) {
			t.Errorf("credentials create %v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, e, tc.want)
		}
	}

	out = runOK(t, "credentials", "list")
	if names := column(t, out, "NAME"); strings.Join(names, ",") != "ci-reader,all-reader" || strings.Contains(out, secret) {
		t.Errorf("credentials list:\n%s", out)
	}
	if out := runOK(t, "credentials", "list", "--json"); strings.Contains(out, secret) || strings.Contains(out, all.Secret) || !strings.Contains(out, id) {
		t.Errorf("credentials list --json:\n%s", out)
	}
	out = runOK(t, "credentials", "revoke", id)
	if column(t, out, "ID")[0] != id || column(t, out, "REVOKED")[0] == "-" {
		t.Errorf("revoke:\n%s", out)
	}
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", secret)
	if code, _, e := runCLI(t, "", "keys", "list"); code != 1 || !strings.Contains(e, "Unauthenticated") {
		t.Errorf("a revoked credential's keys list: exit %d %q", code, e)
	}
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", admin)
	// The audit table names what each event changed.
	out = runOK(t, "audit", "list")
	if r, ids, acts := column(t, out, "RESOURCE"), column(t, out, "ID"), column(t, out, "ACTION"); r[0] != "credential" || ids[0] != id || acts[0] != "revoke" ||
		r[len(r)-1] != "keyspace" || ids[len(ids)-1] != ks.Keyspace.ID || r[len(r)-2] != "key" || ids[len(ids)-2] != inBilling.Key.ID {
		t.Errorf("audit list:\n%s", out)
	}
	if code, _, e := runCLI(t, "", "credentials", "revoke", "a", "b"); code != 2 || !strings.Contains(e, "one credential id") {
		t.Errorf("revoke a b: exit %d %q", code, e)
	}
}
