package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// fromRow turns a row of api_keys into a Key.
func fromRow(r dbsqlc.APIKey) (Key, error) {
	k := Key{
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
	}
	if r.RotatedFrom.Valid {
		k.RotatedFrom = r.RotatedFrom.Bytes
	}
	if r.RotatedTo.Valid {
		k.RotatedTo = r.RotatedTo.Bytes
	}
	if len(r.AllowedCIDRs) > 0 {
		k.AllowedCIDRs = make([]netip.Prefix, len(r.AllowedCIDRs))
		for i, c := range r.AllowedCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return Key{}, fmt.Errorf("store: key %s has a malformed allowed CIDR %q: %w", r.ID, c, err)
			}
			k.AllowedCIDRs[i] = p
		}
	}
	if len(r.KeyHash) != len(k.Hash) {
		return Key{}, fmt.Errorf("store: key %s has a %d-byte hash", r.ID, len(r.KeyHash))
	}
	copy(k.Hash[:], r.KeyHash)
	if r.RateLimit.Valid && r.RatePeriod.Valid {
		period := time.Duration(r.RatePeriod.Microseconds)*time.Microsecond +
			time.Duration(r.RatePeriod.Days)*24*time.Hour + time.Duration(r.RatePeriod.Months)*30*24*time.Hour
		burst := int(r.RateLimit.Int32)
		if r.RateBurst.Valid {
			burst = int(r.RateBurst.Int32)
		}
		k.RateLimit = &RateLimit{Limit: int(r.RateLimit.Int32), Period: period, Burst: burst}
	}
	if len(r.Metadata) > 0 {
		if err := json.Unmarshal(r.Metadata, &k.Metadata); err != nil {
			return Key{}, fmt.Errorf("store: decoding metadata of key %s: %w", r.ID, err)
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
