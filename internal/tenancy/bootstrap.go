package tenancy

import (
	"crypto/sha256"
	"fmt"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/perm"
)

// Bootstrap makes the credentials of the environment: each admin token
// (names parallel to tokens) holds perms[name] when named there, else
// every permission; each caller token may validate. All of them act on
// every keyspace and cannot be revoked through the API: rotate them away
// by creating a stored credential, moving to it, and removing the token
// from the environment (docs/tenancy.md).
func Bootstrap(adminTokens, adminNames []string, perms map[string]perm.Set, callerTokens map[string]string) []apikey.Credential {
	var out []apikey.Credential
	for i, tok := range adminTokens {
		name := fmt.Sprintf("admin-%d", i+1)
		if i < len(adminNames) && adminNames[i] != "" {
			name = adminNames[i]
		}
		ps, ok := perms[name]
		if !ok {
			ps = perm.All
		}
		out = append(out, apikey.Credential{Name: name, Hash: sha256.Sum256([]byte(tok)), Permissions: ps, AllKeyspaces: true, Bootstrap: true})
	}
	for name, tok := range callerTokens {
		out = append(out, apikey.Credential{Name: name, Hash: sha256.Sum256([]byte(tok)), Permissions: perm.Of(perm.KeysValidate), AllKeyspaces: true, Bootstrap: true})
	}
	return out
}
