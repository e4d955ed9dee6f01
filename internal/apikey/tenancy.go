package apikey

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/perm"
)

// DefaultKeyspaceID is the keyspace every key made before keyspaces
// existed belongs to (migration 00012), and of keys created without one.
var DefaultKeyspaceID = uuid.MustParse("00000000-0000-0000-0000-000000000001")

// DefaultKeyspaceName is the default keyspace's name as first created.
const DefaultKeyspaceName = "default"

// Keyspace is a product's own space of keys: its prefix and the defaults
// of its new keys. A key of one keyspace is never valid for another.
type Keyspace struct {
	ID   uuid.UUID
	Name string
	// Prefix of its keys; "" for the default keyspace, whose prefix is the
	// configured one.
	Prefix string
	// DefaultFormat of new keys: "", "checksum" or "signed" ("": the
	// configured default).
	DefaultFormat string
	DefaultRate   *RateLimit    // nil: the configured default
	DefaultExpiry time.Duration // 0: new keys never expire
	DefaultScopes []string
	CreatedAt     time.Time
	UpdatedAt     *time.Time
}

// Field names of UpdateKeyspace's mask.
const (
	KeyspaceFieldName          = "name"
	KeyspaceFieldDefaultFormat = "default_format"
	KeyspaceFieldDefaultRate   = "default_rate_limit"
	KeyspaceFieldDefaultExpiry = "default_expiry"
	KeyspaceFieldDefaultScopes = "default_scopes"
)

// KeyspaceFields are the fields UpdateKeyspace may change.
var KeyspaceFields = []string{KeyspaceFieldName, KeyspaceFieldDefaultFormat, KeyspaceFieldDefaultRate, KeyspaceFieldDefaultExpiry, KeyspaceFieldDefaultScopes}

// KeyspaceUpdate is a change to the fields of a keyspace named in Fields.
type KeyspaceUpdate struct {
	Fields []string
	Keyspace
}

// Credential is a stored credential, or a bootstrap one from the
// environment (ID uuid.Nil). It never holds the secret.
type Credential struct {
	ID          uuid.UUID
	Name        string
	Hash        [32]byte // SHA-256 of the secret
	Permissions perm.Set
	// AllKeyspaces: every keyspace, present and future; else Keyspaces.
	AllKeyspaces bool
	Keyspaces    []uuid.UUID
	ExpiresAt    *time.Time
	CreatedAt    time.Time
	CreatedBy    string
	RevokedAt    *time.Time
	LastUsedAt   *time.Time
	// Rate is its own caller budget for Validate; nil: the configured one.
	Rate *RateLimit
	// Bootstrap: from the environment (KEYSERVICE_ADMIN_TOKENS or
	// KEYSERVICE_CALLER_TOKENS); it cannot be revoked through the API.
	Bootstrap bool
}

// Usable reports whether c may be used at now: not revoked, not expired.
func (c *Credential) Usable(now time.Time) bool {
	return c.RevokedAt == nil && (c.ExpiresAt == nil || now.Before(*c.ExpiresAt))
}

// InKeyspace reports whether c may act on keyspace id.
func (c *Credential) InKeyspace(id uuid.UUID) bool {
	if c.AllKeyspaces {
		return true
	}
	for _, k := range c.Keyspaces {
		if k == id {
			return true
		}
	}
	return false
}

// Admin reports whether c is a bootstrap admin token: the caller limiter
// knows every one of them as the one caller "admin", as before stored
// credentials (KEYSERVICE_CALLER_LIMITS names it so).
func (c *Credential) Admin() bool {
	return c.Bootstrap && c.Permissions != perm.Of(perm.KeysValidate)
}

// CallerName is the name the caller limiter keeps c's budget under.
func (c *Credential) CallerName() string {
	if c.Admin() {
		return "admin"
	}
	return c.Name
}

// Resource types of the audit trail.
const (
	ResourceKey        = "key"
	ResourceKeyspace   = "keyspace"
	ResourceCredential = "credential"
	ResourceOwner      = "owner"
)

type credentialKey struct{}

// WithCredential records the credential that authenticated the call (the
// auth interceptor does this); handlers read what it may see from it.
func WithCredential(ctx context.Context, c *Credential) context.Context {
	return context.WithValue(ctx, credentialKey{}, c)
}

// CredentialOf is the credential recorded by WithCredential; nil for a
// call without one (a Validate by address or client certificate).
func CredentialOf(ctx context.Context) *Credential {
	c, _ := ctx.Value(credentialKey{}).(*Credential)
	return c
}
