package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/config"
)

// TestUsageHistoryCountsEveryAnswer: calls over gRPC and REST, then a
// revocation and calls with the revoked key, and a reported charge; the
// flush interval is long, so only the graceful shutdown writes them. A
// replica started afterwards reads every one of them back by outcome,
// over both transports: a restart loses nothing, and a revoked key's
// usage stays readable.
func TestUsageHistoryCountsEveryAnswer(t *testing.T) {
	t.Parallel()
	long := withConfig(func(c *config.Config) { c.UsageFlushInterval = time.Hour })
	a := start(t, long)
	ctx := admin(context.Background())
	secret, k := createKey(t, a, &keyservicev1.CreateKeyRequest{Name: "counted", Owner: "acme", Credits: &keyservicev1.Credits{Remaining: 100}})
	for i := 0; i < 5; i++ {
		validate(t, a, &keyservicev1.ValidateRequest{Key: secret, Cost: ptr(int32(2))})
	}
	for i := 0; i < 3; i++ {
		if code, _, _ := a.rest(t, http.MethodPost, "/v1/keys:validate", "", fmt.Sprintf(`{"key": %q}`, secret)); code != http.StatusOK {
			t.Fatalf("REST validate: %d", code)
		}
	}
	if _, err := a.grpc.ReportUsage(ctx, &keyservicev1.ReportUsageRequest{KeyId: k.GetId(), Cost: 7, RequestId: uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.grpc.RevokeKey(ctx, &keyservicev1.RevokeKeyRequest{Id: k.GetId()}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if r := validate(t, a, &keyservicev1.ValidateRequest{Key: secret}); r.GetCode() != keyservicev1.Code_CODE_REVOKED {
			t.Fatalf("after revoke: %v", r.GetCode())
		}
	}
	a.stop(t)
	b := startOn(t, a.dbURL, long)
	b.waitReady(t)
	from := timestamppb.New(time.Now().Add(-time.Hour))
	r, err := b.grpc.GetUsage(ctx, &keyservicev1.GetUsageRequest{KeyId: k.GetId(), From: from, Granularity: keyservicev1.Granularity_GRANULARITY_MINUTE})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetSeries()) != 1 {
		t.Fatalf("series: %v", r.GetSeries())
	}
	tot := r.GetSeries()[0].GetTotal()
	got := map[keyservicev1.Code]int64{}
	for _, c := range tot.GetCounts() {
		got[c.GetCode()] = c.GetCalls()
	}
	if got[keyservicev1.Code_CODE_VALID] != 8 || got[keyservicev1.Code_CODE_REVOKED] != 2 || len(got) != 2 {
		t.Errorf("calls by outcome %v: want 8 VALID and 2 REVOKED", got)
	}
	if tot.GetCredits() != 5*2+3 || tot.GetReports() != 1 || tot.GetReportedCredits() != 7 {
		t.Errorf("credits %d (want 13), reports %d (want 1), reported credits %d (want 7)", tot.GetCredits(), tot.GetReports(), tot.GetReportedCredits())
	}
	// The same over REST, by day.
	code, body, _ := b.rest(t, http.MethodGet, "/v1/usage?key_id="+k.GetId()+"&granularity=GRANULARITY_DAY&from="+from.AsTime().UTC().Format(time.RFC3339), adminToken, "")
	if code != http.StatusOK {
		t.Fatalf("REST GetUsage: %d %v", code, body)
	}
	series, _ := body["series"].([]any)
	if len(series) != 1 {
		t.Fatalf("REST series: %v", body)
	}
	total, _ := series[0].(map[string]any)["total"].(map[string]any)
	calls := map[string]string{}
	for _, c := range total["counts"].([]any) {
		m := c.(map[string]any)
		calls[fmt.Sprint(m["code"])] = fmt.Sprint(m["calls"])
	}
	if calls["CODE_VALID"] != "8" || calls["CODE_REVOKED"] != "2" {
		t.Errorf("REST calls by outcome %v: want 8 VALID and 2 REVOKED", calls)
	}
}
