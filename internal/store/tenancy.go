package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/perm"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// Keyspaces and credentials: small tables that every replica reads whole
// (AllKeyspaces, AllCredentials) and reads again when a write's NOTIFY
// (EventKeyspaces, EventCredentials) or the periodic sync tells it to.

// AllKeyspaces reads every keyspace, oldest first.
func (s *Store) AllKeyspaces(ctx context.Context) ([]apikey.Keyspace, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := s.q.AllKeyspaces(ctx, conn)
	if err != nil {
		return nil, classify(fmt.Errorf("reading keyspaces: %w", err))
	}
	out := make([]apikey.Keyspace, len(rows))
	for i, r := range rows {
		out[i] = keyspaceFromRow(r)
	}
	return out, nil
}

// CreateKeyspace stores ks with a new id, audits and notifies.
func (s *Store) CreateKeyspace(ctx context.Context, ks apikey.Keyspace) (apikey.Keyspace, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return apikey.Keyspace{}, fmt.Errorf("making a keyspace id: %w", err)
	}
	var out apikey.Keyspace
	err = s.inTx(ctx, func(tx *writeTx) error {
		p := dbsqlc.InsertKeyspaceParams{ID: id, Name: ks.Name, Prefix: ks.Prefix, DefaultFormat: ks.DefaultFormat,
			DefaultExpiry: interval(ks.DefaultExpiry), DefaultScopes: nonNilSlice(ks.DefaultScopes)}
		p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(storedRate(ks.DefaultRate))
		row, err := s.q.InsertKeyspace(ctx, tx, p)
		if err != nil {
			return uniqueAs(err, "keyspace", "inserting keyspace")
		}
		out = keyspaceFromRow(row)
		if err := s.audit(ctx, tx, apikey.ActionCreate, ref{apikey.ResourceKeyspace, out.ID, out.ID}, keyspaceDiff(&apikey.Keyspace{}, &out)); err != nil {
			return err
		}
		return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventKeyspaces})
	})
	return out, err
}

// UpdateKeyspace applies u to the keyspace with id, audits and notifies.
func (s *Store) UpdateKeyspace(ctx context.Context, id uuid.UUID, u apikey.KeyspaceUpdate) (apikey.Keyspace, error) {
	var out apikey.Keyspace
	err := s.inTx(ctx, func(tx *writeTx) error {
		row, err := s.q.GetKeyspaceForUpdate(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("reading keyspace: %w", err)
		}
		old := keyspaceFromRow(row)
		next := old
		for _, f := range u.Fields {
			switch f {
			case apikey.KeyspaceFieldName:
				next.Name = u.Name
			case apikey.KeyspaceFieldDefaultFormat:
				next.DefaultFormat = u.DefaultFormat
			case apikey.KeyspaceFieldDefaultRate:
				next.DefaultRate = storedRate(u.DefaultRate)
			case apikey.KeyspaceFieldDefaultExpiry:
				next.DefaultExpiry = u.DefaultExpiry
			case apikey.KeyspaceFieldDefaultScopes:
				next.DefaultScopes = u.DefaultScopes
			}
		}
		changes := keyspaceDiff(&old, &next)
		if len(changes) == 0 {
			out = old
			return nil
		}
		p := dbsqlc.UpdateKeyspaceParams{ID: id, Name: next.Name, DefaultFormat: next.DefaultFormat,
			DefaultExpiry: interval(next.DefaultExpiry), DefaultScopes: nonNilSlice(next.DefaultScopes)}
		p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(next.DefaultRate)
		if row, err = s.q.UpdateKeyspace(ctx, tx, p); err != nil {
			return uniqueAs(err, "keyspace", "updating keyspace")
		}
		out = keyspaceFromRow(row)
		if err := s.audit(ctx, tx, apikey.ActionUpdate, ref{apikey.ResourceKeyspace, id, id}, changes); err != nil {
			return err
		}
		return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventKeyspaces})
	})
	return out, err
}

// AllCredentials reads every stored credential, revoked ones included.
func (s *Store) AllCredentials(ctx context.Context) ([]apikey.Credential, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := s.q.AllCredentials(ctx, conn)
	if err != nil {
		return nil, classify(fmt.Errorf("reading credentials: %w", err))
	}
	out := make([]apikey.Credential, 0, len(rows))
	for _, r := range rows {
		c, err := credentialFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// CreateCredential stores c (its Hash, never a secret) with a new id,
// audits and notifies.
func (s *Store) CreateCredential(ctx context.Context, c apikey.Credential) (apikey.Credential, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return apikey.Credential{}, fmt.Errorf("making a credential id: %w", err)
	}
	var out apikey.Credential
	err = s.inTx(ctx, func(tx *writeTx) error {
		p := dbsqlc.InsertCredentialParams{ID: id, Name: c.Name, SecretHash: c.Hash[:], Permissions: c.Permissions.Names(),
			AllKeyspaces: c.AllKeyspaces, KeyspaceIDs: nonNilIDs(c.Keyspaces), ExpiresAt: storedTime(c.ExpiresAt),
			CreatedBy: apikey.AuditOf(ctx).Actor}
		p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(storedRate(c.Rate))
		row, err := s.q.InsertCredential(ctx, tx, p)
		if err != nil {
			return uniqueAs(err, "credential", "inserting credential")
		}
		if out, err = credentialFromRow(row); err != nil {
			return err
		}
		changes := []apikey.Change{
			{Field: "name", New: out.Name},
			{Field: "permissions", New: out.Permissions.Names()},
			{Field: "all_keyspaces", New: out.AllKeyspaces},
			{Field: "keyspace_ids", New: idStrings(out.Keyspaces)},
			{Field: "expires_at", New: timeOrNil(out.ExpiresAt)},
		}
		if err := s.audit(ctx, tx, apikey.ActionCreate, ref{typ: apikey.ResourceCredential, id: out.ID}, changes); err != nil {
			return err
		}
		return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventCredentials})
	})
	return out, err
}

// RevokeCredential revokes the credential with id (allowed reports
// whether the caller may: it sees the record under its row lock); revoking
// twice keeps the first time and records nothing the second time.
func (s *Store) RevokeCredential(ctx context.Context, id uuid.UUID, allowed func(apikey.Credential) error) (apikey.Credential, error) {
	var out apikey.Credential
	err := s.inTx(ctx, func(tx *writeTx) error {
		row, err := s.q.GetCredentialForUpdate(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("reading credential: %w", err)
		}
		before, err := credentialFromRow(row)
		if err != nil {
			return err
		}
		if err := allowed(before); err != nil {
			return err
		}
		if before.RevokedAt != nil {
			out = before
			return nil
		}
		if row, err = s.q.RevokeCredential(ctx, tx, id); err != nil {
			return fmt.Errorf("revoking credential: %w", err)
		}
		if out, err = credentialFromRow(row); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, apikey.ActionRevoke, ref{typ: apikey.ResourceCredential, id: id},
			[]apikey.Change{{Field: "revoked_at", New: timeOrNil(out.RevokedAt)}}); err != nil {
			return err
		}
		return s.notify(ctx, tx, apikey.Event{Kind: apikey.EventCredentials})
	})
	return out, err
}

// TouchCredentialsUsed records buffered last-use times in one statement.
func (s *Store) TouchCredentialsUsed(ctx context.Context, ids []uuid.UUID, at []time.Time) error {
	conn, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return classify(s.q.TouchCredentialsUsed(ctx, conn, dbsqlc.TouchCredentialsUsedParams{IDs: ids, UsedAt: at}))
}

// uniqueAs turns a unique violation into apikey.ErrExists naming the
// field, and wraps anything else with what was being done.
func uniqueAs(err error, what, doing string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UniqueViolation {
		field := "name"
		switch pgErr.ConstraintName {
		case "keyspaces_prefix_idx":
			field = "prefix"
		case "credentials_secret_hash_key":
			field = "secret"
		}
		return fmt.Errorf("a %s with this %s %w", what, field, apikey.ErrExists)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func interval(d time.Duration) pgtype.Interval {
	return pgtype.Interval{Microseconds: d.Microseconds(), Valid: d > 0}
}

func durationOf(iv pgtype.Interval) time.Duration {
	if !iv.Valid {
		return 0
	}
	return time.Duration(iv.Microseconds)*time.Microsecond + time.Duration(iv.Days)*24*time.Hour + time.Duration(iv.Months)*30*24*time.Hour
}

func rateOf(limit pgtype.Int4, period pgtype.Interval, burst pgtype.Int4) *apikey.RateLimit {
	if !limit.Valid || !period.Valid {
		return nil
	}
	b := int(limit.Int32)
	if burst.Valid {
		b = int(burst.Int32)
	}
	return &apikey.RateLimit{Limit: int(limit.Int32), Period: durationOf(period), Burst: b}
}

func keyspaceFromRow(r dbsqlc.Keyspace) apikey.Keyspace {
	return apikey.Keyspace{ID: r.ID, Name: r.Name, Prefix: r.Prefix, DefaultFormat: r.DefaultFormat,
		DefaultRate: rateOf(r.RateLimit, r.RatePeriod, r.RateBurst), DefaultExpiry: durationOf(r.DefaultExpiry),
		DefaultScopes: r.DefaultScopes, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func credentialFromRow(r dbsqlc.Credential) (apikey.Credential, error) {
	// Names this release does not know (written by a newer one) grant
	// nothing here; the rest of the credential stands.
	ps, _ := perm.ParseKnown(r.Permissions)
	c := apikey.Credential{ID: r.ID, Name: r.Name, Permissions: ps, AllKeyspaces: r.AllKeyspaces, Keyspaces: r.KeyspaceIDs,
		ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy, RevokedAt: r.RevokedAt, LastUsedAt: r.LastUsedAt,
		Rate: rateOf(r.RateLimit, r.RatePeriod, r.RateBurst)}
	if len(r.SecretHash) != len(c.Hash) {
		return apikey.Credential{}, fmt.Errorf("store: credential %s has a %d-byte hash", r.ID, len(r.SecretHash))
	}
	copy(c.Hash[:], r.SecretHash)
	return c, nil
}

func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// keyspaceDiff lists the fields that differ between a and b.
func keyspaceDiff(a, b *apikey.Keyspace) []apikey.Change {
	var out []apikey.Change
	add := func(field string, old, new any) { out = append(out, apikey.Change{Field: field, Old: old, New: new}) }
	if a.Name != b.Name {
		add(apikey.KeyspaceFieldName, textOrNil(a.Name), textOrNil(b.Name))
	}
	if a.Prefix != b.Prefix {
		add("prefix", textOrNil(a.Prefix), textOrNil(b.Prefix))
	}
	if a.DefaultFormat != b.DefaultFormat {
		add(apikey.KeyspaceFieldDefaultFormat, textOrNil(a.DefaultFormat), textOrNil(b.DefaultFormat))
	}
	if !ratesEqual(a.DefaultRate, b.DefaultRate) {
		add(apikey.KeyspaceFieldDefaultRate, rateOrNil(a.DefaultRate), rateOrNil(b.DefaultRate))
	}
	if a.DefaultExpiry != b.DefaultExpiry {
		add(apikey.KeyspaceFieldDefaultExpiry, durOrNil(a.DefaultExpiry), durOrNil(b.DefaultExpiry))
	}
	if !slices.Equal(a.DefaultScopes, b.DefaultScopes) {
		add(apikey.KeyspaceFieldDefaultScopes, listOrNil(a.DefaultScopes), listOrNil(b.DefaultScopes))
	}
	return out
}

func durOrNil(d time.Duration) any {
	if d == 0 {
		return nil
	}
	return d.String()
}
