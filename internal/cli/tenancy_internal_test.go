package cli

import (
	"slices"
	"strings"
	"testing"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// TestKeyspaceUpdateSendsTheFlagsGiven: update_mask names the fields of
// the flags given and no other; a clearing flag sends its field unset.
func TestKeyspaceUpdateSendsTheFlagsGiven(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		f    keyspaceFlags
		mask []string
		ok   func(*keyservicev1.Keyspace) bool
	}{
		{[]string{"name"}, keyspaceFlags{name: "n"}, []string{"name"}, func(k *keyservicev1.Keyspace) bool { return k.GetName() == "n" }},
		{[]string{"default-rate", "default-scopes"}, keyspaceFlags{rate: "10/1s", scopes: []string{"a", "b"}}, []string{"default_rate_limit", "default_scopes"},
			func(k *keyservicev1.Keyspace) bool {
				return k.GetDefaultRateLimit().GetLimit() == 10 && strings.Join(k.GetDefaultScopes(), ",") == "a,b"
			}},
		{[]string{"clear-default-rate", "clear-default-expiry", "clear-default-scopes"}, keyspaceFlags{}, []string{"default_rate_limit", "default_expiry", "default_scopes"},
			func(k *keyservicev1.Keyspace) bool {
				return k.GetDefaultRateLimit() == nil && k.GetDefaultExpiry() == nil && len(k.GetDefaultScopes()) == 0
			}},
		{[]string{"default-format", "default-expiry"}, keyspaceFlags{format: "signed", expiry: "90m"}, []string{"default_format", "default_expiry"},
			func(k *keyservicev1.Keyspace) bool {
				return k.GetDefaultFormat() == keyservicev1.Format_FORMAT_SIGNED && k.GetDefaultExpiry().AsDuration().Minutes() == 90
			}},
	} {
		set := map[string]bool{}
		for _, s := range tc.set {
			set[s] = true
		}
		req, err := keyspaceUpdateRequest("0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a", set, tc.f)
		if err != nil {
			t.Errorf("%v: %v", tc.set, err)
			continue
		}
		if got := req.GetUpdateMask().GetPaths(); !slices.Equal(got, tc.mask) || req.GetKeyspace().GetId() != "0b7e2c9a-4f1d-4c3e-9a51-2f6d8e0c1b2a" || !tc.ok(req.GetKeyspace()) {
			t.Errorf("%v: sent mask %v, keyspace %v; want mask %v", tc.set, got, req.GetKeyspace(), tc.mask)
		}
	}
}

// TestCredentialRequest: the permissions are sent by their names, once
// each; an unknown one, both or neither of --all-keyspaces and
// --keyspaces, and both expiries are refused.
func TestCredentialRequest(t *testing.T) {
	req, err := credentialRequest("ci", credentialFlags{perms: []string{"audit.read", " keys.read", "audit.read"}, keyspaces: []string{"billing", "search"}, expiresIn: "1h", rate: "100/1s"})
	if err != nil {
		t.Fatal(err)
	}
	if req.GetName() != "ci" || strings.Join(req.GetPermissions(), ",") != "keys.read,audit.read" || req.GetAllKeyspaces() ||
		strings.Join(req.GetKeyspaces(), ",") != "billing,search" || req.GetExpiresAt() == nil || req.GetRateLimit().GetLimit() != 100 {
		t.Errorf("sent %v", req)
	}
	for _, f := range []credentialFlags{
		{perms: []string{"keys.frob"}, all: true},
		{perms: []string{"keys.read"}},
		{perms: []string{"keys.read"}, all: true, keyspaces: []string{"a"}},
		{all: true},
		{perms: []string{"keys.read"}, all: true, expiresIn: "1h", expiresAt: "2030-01-01T00:00:00Z"},
		{perms: []string{"keys.read"}, all: true, expiresAt: "tomorrow"},
	} {
		if _, err := credentialRequest("ci", f); err == nil {
			t.Errorf("%+v was not refused", f)
		}
	}
}
