package validate

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
)

// TestRecordRoundTrip: every field of a key survives memory mode's
// encoding, set or unset, and a record with nothing optional is small.
func TestRecordRoundTrip(t *testing.T) {
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	full := apikey.Key{
		ID: uuid.New(), Hint: "ks_ab…yz", Name: "production", Owner: "acme",
		Scopes: []string{"read", "write"}, Metadata: map[string]string{"plan": "pro", "region": "eu"},
		ExpiresAt: at("9999-12-31T23:59:59.999999Z"), CreatedAt: *at("2026-12-03T07:00:00.123456Z"),
		RevokedAt: at("1969-07-20T20:17:40Z"), LastUsedAt: at("2026-12-03T08:00:00Z"),
		RateLimit: &apikey.RateLimit{Limit: 100, Period: time.Minute, Burst: 20}, Enabled: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		RotatedFrom:  uuid.New(), RotatedTo: uuid.New(), UpdatedAt: at("2026-12-03T07:30:00.5Z"),
		BudgetID: uuid.New(), KeyspaceID: uuid.New(), Credits: true,
	}
	bare := apikey.Key{ID: uuid.New(), CreatedAt: *at("2026-12-03T07:00:00Z")}
	for name, k := range map[string]apikey.Key{"every field": full, "nothing optional": bare} {
		rec := encodeRecord(nil, &k)
		if n := recordLen(rec); n != len(rec) {
			t.Fatalf("%s: recordLen %d of %d bytes", name, n, len(rec))
		}
		got := decodeRecord(rec)
		if !reflect.DeepEqual(got, k) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, k)
		}
	}
	if n := len(encodeRecord(nil, &bare)); n > 32 {
		t.Errorf("a bare record takes %d bytes, want at most 32", n)
	}
}
