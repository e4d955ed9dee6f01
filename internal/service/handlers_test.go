package service

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/middleware"
)

// TestWritesRecordTheirActorAndRequest: every admin write reaches the
// store with the admin's name and the call's request id for its audit
// trail, and a new key's secret is in the answer only (the store gets its
// hash and hint).
func TestWritesRecordTheirActorAndRequest(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	s := newTestService(t, st, nil, nil)
	ctx, _ := middleware.WithRequestID(caller.WithActor(context.Background(), "ci"), "req-7")
	created, err := s.CreateKey(ctx, &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: goodID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateKey(ctx, &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: goodID, Name: "x"}, UpdateMask: mask("name")}); err != nil {
		t.Fatal(err)
	}
	rotated, err := s.RotateKey(ctx, &keyservicev1.RotateKeyRequest{Id: goodID})
	if err != nil {
		t.Fatal(err)
	}
	want := apikey.Audit{Actor: "ci", RequestID: "req-7"}
	if len(st.audits) != 4 || slices.ContainsFunc(st.audits, func(a apikey.Audit) bool { return a != want }) {
		t.Fatalf("audits %v, want 4 of %v", st.audits, want)
	}
	for _, secret := range []string{created.GetSecret(), rotated.GetSecret()} {
		if testFormat(t).Parse(secret) != nil {
			t.Fatalf("answer's secret %q is not a key", secret)
		}
	}
	if created.GetKey().GetHint() != testFormat(t).Hint(created.GetSecret()) || rotated.GetKey().GetHint() != testFormat(t).Hint(rotated.GetSecret()) {
		t.Fatalf("hints %q %q", created.GetKey().GetHint(), rotated.GetKey().GetHint())
	}
	if rotated.GetOldKey().GetRotatedTo() != rotated.GetKey().GetId() || rotated.GetKey().GetRotatedFrom() != goodID {
		t.Fatalf("rotation links: %v", rotated)
	}
}

// TestKeyToProtoShowsEveryField: the API form of a key carries each of
// its fields, optional ones only when set.
func TestKeyToProtoShowsEveryField(t *testing.T) {
	t.Parallel()
	at := func(s int64) *time.Time { v := time.Unix(s, 0).UTC(); return &v }
	k := apikey.Key{ID: uuid.New(), Hint: "ks_...ab12", Name: "n", Owner: "o", Scopes: []string{"a"}, Metadata: map[string]string{"m": "v"},
		CreatedAt: time.Unix(1, 0), UpdatedAt: at(2), ExpiresAt: at(3), RevokedAt: at(4), LastUsedAt: at(5), Enabled: true,
		RateLimit:    &apikey.RateLimit{Limit: 5, Period: time.Minute, Burst: 7},
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, RotatedFrom: uuid.New(), RotatedTo: uuid.New()}
	p := keyToProto(&k)
	if p.GetId() != k.ID.String() || p.GetHint() != k.Hint || p.GetName() != "n" || p.GetOwner() != "o" || !p.GetEnabled() ||
		p.GetScopes()[0] != "a" || p.GetMetadata()["m"] != "v" || p.GetCreatedAt().GetSeconds() != 1 || p.GetUpdatedAt().GetSeconds() != 2 ||
		p.GetExpiresAt().GetSeconds() != 3 || p.GetRevokedAt().GetSeconds() != 4 || p.GetLastUsedAt().GetSeconds() != 5 ||
		p.GetRateLimit().GetLimit() != 5 || p.GetRateLimit().GetPeriod().AsDuration() != time.Minute || p.GetRateLimit().GetBurst() != 7 ||
		!slices.Equal(p.GetAllowedCidrs(), []string{"10.0.0.0/8"}) || p.GetRotatedFrom() != k.RotatedFrom.String() || p.GetRotatedTo() != k.RotatedTo.String() {
		t.Fatalf("every field: %v", p)
	}
	bare := keyToProto(&apikey.Key{ID: k.ID})
	if bare.UpdatedAt != nil || bare.ExpiresAt != nil || bare.RevokedAt != nil || bare.LastUsedAt != nil || bare.RateLimit != nil ||
		bare.AllowedCidrs != nil || bare.RotatedFrom != "" || bare.RotatedTo != "" {
		t.Fatalf("unset fields shown: %v", bare)
	}
}

// TestAuditEventsAreShownWithTheirChanges: ListAuditEvents passes its
// filters to the store and shows each event's changes as values; a change
// that cannot be shown fails the call (INTERNAL), never half an event.
func TestAuditEventsAreShownWithTheirChanges(t *testing.T) {
	t.Parallel()
	st := newFakeStore()
	s := newTestService(t, st, nil, nil)
	ev := apikey.AuditEvent{ID: uuid.New(), At: testNow, Actor: "ci", Action: apikey.ActionUpdate, KeyID: uuid.MustParse(goodID), RequestID: "r",
		Changes: []apikey.Change{{Field: "name", Old: "a", New: "b"}, {Field: "scopes", Old: []any{}, New: []any{"read"}}}}
	st.events = []apikey.AuditEvent{ev}
	out, err := s.ListAuditEvents(context.Background(), &keyservicev1.ListAuditEventsRequest{KeyId: strings.ToUpper(goodID), Actor: "ci", PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if st.audit.KeyID.String() != goodID || st.audit.Actor != "ci" || st.audit.Limit != 5 {
		t.Fatalf("query %+v", st.audit)
	}
	e := out.GetEvents()[0]
	if len(out.GetEvents()) != 1 || e.GetId() != ev.ID.String() || !e.GetTime().AsTime().Equal(testNow) || e.GetAction() != "update" || e.GetKeyId() != goodID ||
		e.GetRequestId() != "r" || len(e.GetChanges()) != 2 || e.GetChanges()[0].GetNewValue().GetStringValue() != "b" ||
		e.GetChanges()[1].GetNewValue().GetListValue().GetValues()[0].GetStringValue() != "read" {
		t.Fatalf("events %v", out.GetEvents())
	}
	st.events[0].Changes = []apikey.Change{{Field: "x", Old: struct{}{}, New: 1}}
	if _, err := s.ListAuditEvents(context.Background(), &keyservicev1.ListAuditEventsRequest{}); statusOf(err).Code() != codes.Internal {
		t.Fatalf("a change that cannot be shown: %v", err)
	}
}

// TestReportLeaksActsOnEveryTokenAndNamesFailuresByPosition: a token that
// is not a well-formed key costs no lookup, one not found is a false
// positive, a key of ours is revoked (or only flagged) under the scanning
// actor; a failure is named by the token's position, never its value,
// after every other token is acted on.
func TestReportLeaksActsOnEveryTokenAndNamesFailuresByPosition(t *testing.T) {
	t.Parallel()
	f := testFormat(t)
	gen := func() keys.Generated {
		g, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	ours, failing, unknown := gen(), gen(), gen()
	st := newFakeStore()
	oursID, failingID := uuid.New(), uuid.New()
	st.known = map[keys.Hash]apikey.Key{ours.Hash: {ID: oursID}, failing.Hash: {ID: failingID}}
	st.failing = map[uuid.UUID]error{failingID: apikey.ErrUnavailable}
	s := newTestService(t, st, nil, nil)
	leaks := []Leak{{Token: "ks_not_a_key"}, {Token: failing.Secret}, {Token: unknown.Secret}, {Token: ours.Secret, URL: "https://x", Source: "github", Type: "t"}}
	verdicts, err := s.ReportLeaks(context.Background(), leaks, false)
	if !errors.Is(err, apikey.ErrUnavailable) || !strings.Contains(err.Error(), "token 2 of 4") || strings.Contains(err.Error(), failing.Secret) {
		t.Fatalf("error %v", err)
	}
	want := []LeakVerdict{{}, {}, {}, {TruePositive: true, Action: apikey.LeakRevoked}}
	if !slices.Equal(verdicts, want) {
		t.Fatalf("verdicts %v, want %v", verdicts, want)
	}
	if n := len(slices.DeleteFunc(st.Calls(), func(c string) bool { return c != "KeyByHash" })); n != 3 {
		t.Fatalf("%d lookups, want 3 (none for the malformed token)", n)
	}
	if last := st.leaked[len(st.leaked)-1]; last != (apikey.LeakReport{KeyID: oursID, URL: "https://x", Source: "github", TokenType: "t"}) || st.audits[0].Actor != ScanningActor {
		t.Fatalf("report %+v by %v", last, st.audits)
	}
	if verdicts, err := s.ReportLeaks(context.Background(), leaks[3:], true); err != nil || verdicts[0].Action != apikey.LeakFlagged {
		t.Fatalf("flag only: %v %v", verdicts, err)
	}
}

// TestCheckImportedTakesAnExpiredKey: an imported key is checked by
// CreateKey's rules, except that it may have expired.
func TestCheckImportedTakesAnExpiredKey(t *testing.T) {
	t.Parallel()
	req := &keyservicev1.CreateKeyRequest{Name: "n", Owner: "o", ExpiresAt: timestamppb.New(time.Unix(1, 0))}
	if nk, err := CheckImported(req); err != nil || nk.ExpiresAt == nil || nk.ExpiresAt.Unix() != 1 {
		t.Fatalf("expired import: %v %v", nk, err)
	}
	req.Owner = ""
	if _, err := CheckImported(req); statusOf(err).Message() != "owner: is required" {
		t.Fatalf("import without owner: %v", err)
	}
}
