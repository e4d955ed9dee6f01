package validate

// A key's record as memory mode keeps it (resident.go): a length, a
// presence mask, the id, the creation time, then only the fields that are
// set. The hash is the table's key, not part of the record.

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
)

const (
	recHint = 1 << iota
	recName
	recOwner
	recScopes
	recMetadata
	recExpires
	recRevoked
	recLastUsed
	recRateLimit
	recEnabled
	recCIDRs
	recRotatedFrom
	recRotatedTo
	recUpdated
	recBudget
	recKeyspace
	recCredits
	recDefaultKeyspace // the default keyspace's key: its id is not stored
)

// encodeRecord appends k's record to b.
func encodeRecord(b []byte, k *apikey.Key) []byte {
	var mask uint64
	set := func(bit uint64, on bool) {
		if on {
			mask |= bit
		}
	}
	set(recHint, k.Hint != "")
	set(recName, k.Name != "")
	set(recOwner, k.Owner != "")
	set(recScopes, len(k.Scopes) > 0)
	set(recMetadata, len(k.Metadata) > 0)
	set(recExpires, k.ExpiresAt != nil)
	set(recRevoked, k.RevokedAt != nil)
	set(recLastUsed, k.LastUsedAt != nil)
	set(recRateLimit, k.RateLimit != nil)
	set(recEnabled, k.Enabled)
	set(recCIDRs, len(k.AllowedCIDRs) > 0)
	set(recRotatedFrom, k.RotatedFrom != uuid.Nil)
	set(recRotatedTo, k.RotatedTo != uuid.Nil)
	set(recUpdated, k.UpdatedAt != nil)
	set(recBudget, k.BudgetID != uuid.Nil)
	set(recKeyspace, k.KeyspaceID != uuid.Nil && k.KeyspaceID != apikey.DefaultKeyspaceID)
	set(recDefaultKeyspace, k.KeyspaceID == apikey.DefaultKeyspaceID)
	set(recCredits, k.Credits)

	var body [512]byte
	p := body[:0]
	p = binary.AppendUvarint(p, mask)
	p = append(p, k.ID[:]...)
	p = appendTime(p, k.CreatedAt)
	str := func(s string) { p = binary.AppendUvarint(p, uint64(len(s))); p = append(p, s...) }
	if mask&recHint != 0 {
		str(k.Hint)
	}
	if mask&recName != 0 {
		str(k.Name)
	}
	if mask&recOwner != 0 {
		str(k.Owner)
	}
	if mask&recScopes != 0 {
		p = binary.AppendUvarint(p, uint64(len(k.Scopes)))
		for _, s := range k.Scopes {
			str(s)
		}
	}
	if mask&recMetadata != 0 {
		p = binary.AppendUvarint(p, uint64(len(k.Metadata)))
		for name, val := range k.Metadata {
			str(name)
			str(val)
		}
	}
	for _, t := range []struct {
		bit uint64
		at  *time.Time
	}{{recExpires, k.ExpiresAt}, {recRevoked, k.RevokedAt}, {recLastUsed, k.LastUsedAt}, {recUpdated, k.UpdatedAt}} {
		if mask&t.bit != 0 {
			p = appendTime(p, *t.at)
		}
	}
	if l := k.RateLimit; l != nil {
		p = binary.AppendUvarint(p, uint64(l.Limit))
		p = binary.AppendUvarint(p, uint64(l.Period))
		p = binary.AppendUvarint(p, uint64(l.Burst))
	}
	if mask&recCIDRs != 0 {
		p = binary.AppendUvarint(p, uint64(len(k.AllowedCIDRs)))
		for _, c := range k.AllowedCIDRs {
			raw, _ := c.MarshalBinary() // a valid prefix always encodes
			str(string(raw))
		}
	}
	for _, id := range []struct {
		bit uint64
		id  uuid.UUID
	}{{recRotatedFrom, k.RotatedFrom}, {recRotatedTo, k.RotatedTo}, {recBudget, k.BudgetID}, {recKeyspace, k.KeyspaceID}} {
		if mask&id.bit != 0 {
			p = append(p, id.id[:]...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// recordLen is the length of the record at the start of b, its length
// prefix included.
func recordLen(b []byte) int {
	n, w := binary.Uvarint(b)
	return w + int(n)
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Unix()), uint64(t.Nanosecond()))
}

// decodeRecord decodes the record at the start of b (written by
// encodeRecord: it trusts it).
func decodeRecord(b []byte) apikey.Key {
	_, w := binary.Uvarint(b)
	b = b[w:]
	uv := func() uint64 {
		n, w := binary.Uvarint(b)
		b = b[w:]
		return n
	}
	str := func() string {
		n := int(uv())
		s := string(b[:n])
		b = b[n:]
		return s
	}
	tm := func() time.Time {
		sec, w := binary.Varint(b)
		b = b[w:]
		return time.Unix(sec, int64(uv())).UTC()
	}
	id := func() (u uuid.UUID) {
		copy(u[:], b)
		b = b[16:]
		return u
	}
	mask := uv()
	var k apikey.Key
	k.ID = id()
	k.CreatedAt = tm()
	if mask&recHint != 0 {
		k.Hint = str()
	}
	if mask&recName != 0 {
		k.Name = str()
	}
	if mask&recOwner != 0 {
		k.Owner = str()
	}
	if mask&recScopes != 0 {
		k.Scopes = make([]string, uv())
		for i := range k.Scopes {
			k.Scopes[i] = str()
		}
	}
	if mask&recMetadata != 0 {
		n := int(uv())
		k.Metadata = make(map[string]string, n)
		for range n {
			name := str()
			k.Metadata[name] = str()
		}
	}
	for _, t := range []struct {
		bit uint64
		at  **time.Time
	}{{recExpires, &k.ExpiresAt}, {recRevoked, &k.RevokedAt}, {recLastUsed, &k.LastUsedAt}, {recUpdated, &k.UpdatedAt}} {
		if mask&t.bit != 0 {
			at := tm()
			*t.at = &at
		}
	}
	if mask&recRateLimit != 0 {
		k.RateLimit = &apikey.RateLimit{Limit: int(uv()), Period: time.Duration(uv()), Burst: int(uv())}
	}
	k.Enabled = mask&recEnabled != 0
	if mask&recCIDRs != 0 {
		k.AllowedCIDRs = make([]netip.Prefix, uv())
		for i := range k.AllowedCIDRs {
			_ = k.AllowedCIDRs[i].UnmarshalBinary([]byte(str()))
		}
	}
	for _, u := range []struct {
		bit uint64
		id  *uuid.UUID
	}{{recRotatedFrom, &k.RotatedFrom}, {recRotatedTo, &k.RotatedTo}, {recBudget, &k.BudgetID}, {recKeyspace, &k.KeyspaceID}} {
		if mask&u.bit != 0 {
			*u.id = id()
		}
	}
	if mask&recDefaultKeyspace != 0 {
		k.KeyspaceID = apikey.DefaultKeyspaceID
	}
	k.Credits = mask&recCredits != 0
	return k
}
