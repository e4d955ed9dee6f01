package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// A key and its row: what is stored of each field, and how it is read back.

// storedTime is what PostgreSQL keeps of t (timestamptz: microseconds),
// and storedRate what it keeps of r (the period as an interval:
// microseconds). Values are cut to that before they are compared or
// written: a difference finer than the store keeps is no change.
func storedTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	st := t.Truncate(time.Microsecond)
	return &st
}

func storedRate(r *apikey.RateLimit) *apikey.RateLimit {
	if r == nil {
		return nil
	}
	sr := *r
	sr.Period = sr.Period.Truncate(time.Microsecond)
	return &sr
}

func rateColumns(rl *apikey.RateLimit) (limit pgtype.Int4, period pgtype.Interval, burst pgtype.Int4) {
	if rl == nil {
		return
	}
	return pgtype.Int4{Int32: int32(rl.Limit), Valid: true},
		pgtype.Interval{Microseconds: rl.Period.Microseconds(), Valid: true},
		pgtype.Int4{Int32: int32(rl.Burst), Valid: true}
}

func fromRow(r dbsqlc.APIKey) (apikey.Key, error) {
	k := apikey.Key{
		ID:         r.ID,
		Hint:       r.Hint,
		Name:       r.Name,
		Owner:      r.Owner,
		Scopes:     r.Scopes,
		ExpiresAt:  r.ExpiresAt,
		CreatedAt:  r.CreatedAt,
		RevokedAt:  r.RevokedAt,
		LastUsedAt: r.LastUsedAt,
		Enabled:    r.Enabled,
		UpdatedAt:  r.UpdatedAt,
		KeyspaceID: r.KeyspaceID,
		Credits:    r.Credits,
	}
	if r.RotatedFrom.Valid {
		k.RotatedFrom = r.RotatedFrom.Bytes
	}
	if r.RotatedTo.Valid {
		k.RotatedTo = r.RotatedTo.Bytes
	}
	if r.BudgetID.Valid {
		k.BudgetID = r.BudgetID.Bytes
	}
	if len(r.AllowedCIDRs) > 0 {
		k.AllowedCIDRs = make([]netip.Prefix, len(r.AllowedCIDRs))
		for i, c := range r.AllowedCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return apikey.Key{}, fmt.Errorf("store: key %s has a malformed allowed CIDR %q: %w", r.ID, c, err)
			}
			k.AllowedCIDRs[i] = p
		}
	}
	if len(r.KeyHash) != len(k.Hash) {
		return apikey.Key{}, fmt.Errorf("store: key %s has a %d-byte hash", r.ID, len(r.KeyHash))
	}
	copy(k.Hash[:], r.KeyHash)
	if r.RateLimit.Valid && r.RatePeriod.Valid {
		period := time.Duration(r.RatePeriod.Microseconds)*time.Microsecond +
			time.Duration(r.RatePeriod.Days)*24*time.Hour + time.Duration(r.RatePeriod.Months)*30*24*time.Hour
		burst := int(r.RateLimit.Int32)
		if r.RateBurst.Valid {
			burst = int(r.RateBurst.Int32)
		}
		k.RateLimit = &apikey.RateLimit{Limit: int(r.RateLimit.Int32), Period: period, Burst: burst}
	}
	if len(r.Metadata) > 0 && string(r.Metadata) != "{}" { // most keys have none
		if err := json.Unmarshal(r.Metadata, &k.Metadata); err != nil {
			return apikey.Key{}, fmt.Errorf("store: decoding metadata of key %s: %w", r.ID, err)
		}
	}
	return k, nil
}

func cidrStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func nullUUID(id uuid.UUID) pgtype.UUID {
	return pgtype.UUID{Bytes: id, Valid: id != uuid.Nil}
}

func nonNilIDs(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
