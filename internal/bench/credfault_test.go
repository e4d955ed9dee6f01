package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyservice/keyservice/internal/testdb"
)

// TestCredentialRevocationReported: the measurement is in the JSON under
// credential_revocation, has its line in the Markdown, and its p99 is
// judged against the 100 ms target, met and missed.
func TestCredentialRevocationReported(t *testing.T) {
	for _, tc := range []struct {
		p99  float64
		mark string
	}{{2.5, "met"}, {140, "missed"}} {
		rep := &Report{Config: RunConfig{DBLatency: "0s"}, Faults: &Faults{
			CredentialRevocation: CredentialRevocationResult{Trials: 200, RevokeMS: LatencyMS{P50: 0.4, P90: 1.25, P99: tc.p99, Max: 150}}}}
		rep.check()
		var md bytes.Buffer
		rep.WriteMarkdown(&md)
		line := "- **Credential revoked on one replica, refused (UNAUTHENTICATED) on the other** (200 trials): p50 0.40 / p90 1.25 / p99 "
		if !strings.Contains(md.String(), line) || !strings.Contains(md.String(), "max 150.00 ms; p99 target < 100 ms: "+tc.mark+".") {
			t.Errorf("p99 %.2f: markdown lacks the line:\n%s", tc.p99, md.String())
		}
		judged := strings.Join(rep.TargetsOK, "\n")
		if tc.mark == "missed" {
			judged = strings.Join(rep.Missed, "\n")
		}
		if !strings.Contains(judged, "credential revoked→UNAUTHENTICATED on another replica p99") {
			t.Errorf("p99 %.2f: not judged %s; met %v, missed %v", tc.p99, tc.mark, rep.TargetsOK, rep.Missed)
		}
		b, err := json.Marshal(rep.Faults)
		if err != nil || !strings.Contains(string(b), `"credential_revocation":{"trials":200,"revoke_to_unauthenticated_ms":{"p50":0.4,"p90":1.25,`) {
			t.Errorf("json: %v %s", err, b)
		}
	}
	// Not measured (a --target run): no line, nothing judged.
	rep := &Report{Config: RunConfig{DBLatency: "0s"}, Faults: &Faults{}}
	rep.check()
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if strings.Contains(md.String(), "Credential revoked") || strings.Contains(strings.Join(append(rep.TargetsOK, rep.Missed...), "\n"), "credential") {
		t.Errorf("reported without trials:\n%s\n%v %v", md.String(), rep.TargetsOK, rep.Missed)
	}
}

// TestCredentialRevocationBetweenReplicas runs a few trials against two
// real replicas on one database: each revocation made on A is seen as
// UNAUTHENTICATED on B, and every trial is timed.
func TestCredentialRevocationBetweenReplicas(t *testing.T) {
	cfg := Defaults()
	cfg.DatabaseURL = testdb.ServerURL(t)
	cfg.Keys, cfg.Trials = 2000, 5
	cfg.Log = testLogger(t)
	// What Run sets for each run (an earlier test's --target run leaves
	// its own admin token): this test starts the replicas itself.
	dialTLS, adminToken = nil, benchAdminToken
	ctx := context.Background()
	e, err := setup(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	a, stopA, err := e.startService(ctx, "keyservice")
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	b, stopB, err := e.startService(ctx, "keyservice")
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	ga, err := newGRPC(a.GRPCAddr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ga.close()
	gb, err := newGRPC(b.GRPCAddr().String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer gb.close()
	res, err := e.credentialRevocation(ctx, ga, gb)
	if err != nil {
		t.Fatal(err)
	}
	if l := res.RevokeMS; res.Trials != 5 || l.Max <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
		t.Fatalf("result %+v", res)
	}
	// Each trial stopped at B's first refusal of the revoked credential,
	// and B knew each credential (PERMISSION_DENIED) before it was revoked.
	if n := rpcCalls(t, b, "Validate", "Unauthenticated"); n != 5 {
		t.Errorf("B refused %v Validate calls as UNAUTHENTICATED, want one per trial (5)", n)
	}
	if n := rpcCalls(t, b, "GetKey", "PermissionDenied"); n < 5 {
		t.Errorf("B denied %v GetKey calls, want at least one per trial (5)", n)
	}
}

// rpcCalls reads s's count of calls to method answered with code.
func rpcCalls(t *testing.T, s endpoint, method, code string) float64 {
	t.Helper()
	resp, err := http.Get(httpScheme() + s.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, m := range families["keyservice_rpc_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if strings.HasSuffix(labels["method"], "/"+method) && labels["code"] == code {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}
