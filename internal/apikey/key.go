// Package apikey holds the domain of keyservice: the record of an API key
// and what is asked of the store about it (new keys, updates, rotations,
// pages, the audit trail, leak reports, the events that keep replicas in
// step), and the errors callers tell apart. It is a leaf, like river's
// rivertype: it imports no database driver and nothing of keyservice but
// the key format (internal/keys), so the validation path, the service and
// the configuration can name these types without depending on PostgreSQL.
// internal/store implements the reads and writes over them.
package apikey

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/keys"
)

// Key is the stored record of an API key. It never holds the secret.
type Key struct {
	ID         uuid.UUID
	Hash       keys.Hash
	Hint       string
	Name       string
	Owner      string
	Scopes     []string
	Metadata   map[string]string
	ExpiresAt  *time.Time
	CreatedAt  time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
	RateLimit  *RateLimit // nil: the configured default
	// Enabled is false while the key is switched off (CODE_DISABLED).
	Enabled bool
	// AllowedCIDRs are the addresses the key may be used from; empty: any.
	AllowedCIDRs []netip.Prefix
	// RotatedFrom and RotatedTo link a rotated key and its successor
	// (uuid.Nil: none).
	RotatedFrom uuid.UUID
	RotatedTo   uuid.UUID
	// UpdatedAt is the database time of the last UpdateKey or RotateKey.
	UpdatedAt *time.Time
	// BudgetID names the per-key budget the key spends from: the first key
	// of its rotation chain (uuid.Nil: its own; see Budget).
	BudgetID uuid.UUID
	// KeyspaceID is the keyspace the key belongs to.
	KeyspaceID uuid.UUID
	// Credits: the key spends credits (stored under Budget()); Validate's
	// cost takes them.
	Credits bool
}

// Budget names the per-key budget k spends from: every key of a rotation
// chain spends from its first key's, so rotating never adds budget.
func (k *Key) Budget() uuid.UUID {
	if k.BudgetID != uuid.Nil {
		return k.BudgetID
	}
	return k.ID
}

// RateLimit is a token bucket (a key's own, or the default): Burst calls at
// once, refilled at Limit per Period.
type RateLimit struct {
	Limit  int
	Period time.Duration
	Burst  int
}

// PerSecond is l's steady rate, in calls a second.
func (l RateLimit) PerSecond() float64 { return float64(l.Limit) / l.Period.Seconds() }

// Valid explains why l cannot be used, or returns nil.
func (l RateLimit) Valid() error {
	switch {
	case l.Limit < 1 || l.Limit > 1_000_000_000:
		return fmt.Errorf("limit must be between 1 and 1000000000, got %d", l.Limit)
	case l.Period < time.Millisecond || l.Period > 24*time.Hour:
		return fmt.Errorf("period must be between 1ms and 24h, got %s", l.Period)
	case l.Burst < 1 || l.Burst > 1_000_000_000:
		return fmt.Errorf("burst must be between 1 and 1000000000, got %d", l.Burst)
	}
	return nil
}

// NewKey is what CreateKey stores.
type NewKey struct {
	Hash      keys.Hash
	Hint      string
	Name      string
	Owner     string
	Scopes    []string
	Metadata  map[string]string
	ExpiresAt *time.Time
	RateLimit *RateLimit
	// AllowedCIDRs, when not empty, pins the key to these addresses.
	AllowedCIDRs []netip.Prefix
	// RotatedFrom is the key this one replaces, and BudgetID the budget it
	// shares with it (RotateKey).
	RotatedFrom uuid.UUID
	BudgetID    uuid.UUID
	// KeyspaceID is the new key's keyspace (uuid.Nil: the default).
	KeyspaceID uuid.UUID
	// Credits, when set, gives the key credits. SharesCredits: a rotated
	// key spends its predecessor's (the chain's budget id names them).
	Credits       *CreditsSetting
	SharesCredits bool
}

// ListParams selects a page of keys.
type ListParams struct {
	Owner string // empty: all owners
	// Keyspaces, when not nil, keeps only keys of these keyspaces.
	Keyspaces []uuid.UUID
	After     Cursor // zero: from the start
	Limit     int
	// Pattern, when not empty, keeps keys whose name or hint matches it
	// (SQL ILIKE, already escaped).
	Pattern string
	// State, when not StateAny, keeps keys in that state.
	State State
	// NewestFirst walks the keys newest first; After is then the previous
	// page's last (oldest) key.
	NewestFirst bool
}

// State is what a key answers now, as ListKeys filters it (the values of
// the API's KeyState).
type State int32

// States.
const (
	StateAny State = iota
	StateActive
	StateDisabled
	StateExpired
	StateRevoked
)

// Field names of UpdateKey's mask.
const (
	FieldName         = "name"
	FieldScopes       = "scopes"
	FieldMetadata     = "metadata"
	FieldExpiresAt    = "expires_at"
	FieldRateLimit    = "rate_limit"
	FieldEnabled      = "enabled"
	FieldAllowedCIDRs = "allowed_cidrs"
	FieldCredits      = "credits"
)

// UpdatableFields are the fields UpdateKey may change.
var UpdatableFields = []string{FieldName, FieldScopes, FieldMetadata, FieldExpiresAt, FieldRateLimit, FieldEnabled, FieldAllowedCIDRs, FieldCredits}

// Update is a change to some fields of a key: those named in Fields take
// the values given here (a nil ExpiresAt or RateLimit clears it).
type Update struct {
	Fields       []string
	Name         string
	Scopes       []string
	Metadata     map[string]string
	ExpiresAt    *time.Time
	RateLimit    *RateLimit
	Enabled      bool
	AllowedCIDRs []netip.Prefix
	// Credits sets the key's credits (nil: the key has none any more).
	Credits *CreditsSetting
	// BeforeCommit, when set, is called with the updated record just
	// before the transaction commits (and its NOTIFY is sent).
	BeforeCommit func(Key)
}

// Rotation is what RotateKey needs: the new secret's hash and hint, and
// how long the old key stays valid.
type Rotation struct {
	NewKey NewKey        // Hash and Hint; the rest is copied from the old key
	Grace  time.Duration // the old key expires at now+Grace (database clock), never later than it would
	// BeforeCommit, when set, is called with both records just before the
	// transaction commits (and its NOTIFYs are sent).
	BeforeCommit func(newKey, oldKey Key)
}

// Actions recorded for a leak report.
const (
	LeakRevoked        = "revoked"         // revoked by this report
	LeakFlagged        = "flagged"         // recorded only (KEYSERVICE_SCANNING_ACTION=flag)
	LeakAlreadyRevoked = "already_revoked" // nothing to do
)

// LeakReport is a report that a key was found in public (GitHub secret
// scanning).
type LeakReport struct {
	KeyID     uuid.UUID
	URL       string // any length: recorded whole, told apart by its SHA-256
	Source    string
	TokenType string
}

// Budget is the state of a key's budget after a call spent its cost, or
// was refused it: what the per-key limiter answers and Validate shows.
type Budget struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is the time until the bucket is full again; when the call was
	// refused, the time until its cost is available.
	Reset time.Duration
}
