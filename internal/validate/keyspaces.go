package validate

import (
	"slices"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
)

// shapes is what the validation path reads a key's shape with: the format
// (every keyspace's prefix) and the keyspace of each of its spaces.
type shapes struct {
	format keys.Format
	// spaces[i] is the keyspace of the format's space i (0: the default).
	spaces []uuid.UUID
}

// SetKeyspaces replaces the format the path parses keys with: f accepts
// every keyspace's prefix, and spaces[i] is the keyspace of f's space i
// (space 0, the configured formats, is the default keyspace). The tenancy
// registry calls it whenever the keyspaces change.
func (v *Validator) SetKeyspaces(f keys.Format, spaces []uuid.UUID) {
	if len(spaces) == 0 {
		spaces = []uuid.UUID{apikey.DefaultKeyspaceID}
	}
	v.shapes.Store(&shapes{format: f, spaces: spaces})
}

// Scope is the keyspaces a call may find keys in. The zero Scope is every
// keyspace.
type Scope struct {
	// Restricted: only keys of the keyspaces in IDs.
	Restricted bool
	IDs        []uuid.UUID
}

// Allows reports whether a key of keyspace id may be found in s.
func (s Scope) Allows(id uuid.UUID) bool {
	return !s.Restricted || slices.Contains(s.IDs, id)
}

// keyspaceOf is the keyspace of space, uuid.Nil when unknown.
func (sh *shapes) keyspaceOf(space int) uuid.UUID {
	if space < 0 || space >= len(sh.spaces) {
		return uuid.Nil
	}
	return sh.spaces[space]
}
