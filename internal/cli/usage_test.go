package cli_test

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/config"
)

// TestUsageChartAndExport: after validations of two owners' keys, the
// chart shows the key's calls by outcome with totals, and the export has a
// header and one row per owner per day with the calls by outcome.
func TestUsageChartAndExport(t *testing.T) {
	t.Setenv("KEYSERVICE_ADDR", startServer(t, func(c *config.Config) { c.UsageFlushInterval = 50 * time.Millisecond }))
	t.Setenv("KEYSERVICE_ADMIN_TOKEN", "cli-admin-token-0123456789")
	var ids []string
	for i, owner := range []string{"acme", "=globex"} {
		var created struct {
			Secret string
			Key    struct{ ID string }
		}
		decode(t, runOK(t, "keys", "create", "--name", "k", "--owner", owner, "--json"), &created)
		ids = append(ids, created.Key.ID)
		for j := 0; j <= i+1; j++ {
			if code, out, e := runCLI(t, created.Secret, "keys", "validate", "--key-stdin"); code != 0 {
				t.Fatalf("validate: exit %d %s %s", code, out, e)
			}
		}
	}
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out = runOK(t, "usage", "--key", ids[0], "--granularity", "minute", "--from", time.Now().UTC().Format("2006-01-02"))
		if strings.Contains(out, "total: VALID 2") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, "total: VALID 2") || !strings.Contains(out, "##") || !strings.Contains(out, "VALID 2") {
		t.Fatalf("chart:\n%s", out)
	}
	// Every call is counted once a flush has written it: wait for the
	// last (globex's third).
	var csvOut string
	var rows [][]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		csvOut = runOK(t, "usage", "export", "--from", time.Now().UTC().Add(-24*time.Hour).Format("2006-01-02"), "--by", "owner")
		var err error
		if rows, err = csv.NewReader(strings.NewReader(csvOut)).ReadAll(); err != nil {
			t.Fatalf("%v\n%s", err, csvOut)
		}
		if strings.Contains(csvOut, "'=globex,,3,") {
			break
		}
	}
	if len(rows) != 3 || strings.Join(rows[0][:5], ",") != "start,keyspace_id,owner,key_id,valid" || !strings.HasSuffix(strings.Join(rows[0], ","), "credits,reports,reported_credits") {
		t.Fatalf("export:\n%s", csvOut)
	}
	byOwner := map[string]string{}
	for _, r := range rows[1:] {
		byOwner[r[2]] = r[4]
	}
	if byOwner["acme"] != "2" || byOwner["'=globex"] != "3" {
		t.Fatalf("VALID by owner %v (an owner starting with = is quoted for spreadsheets):\n%s", byOwner, csvOut)
	}
	if code, _, e := runCLI(t, "", "usage", "export", "--by", "team"); code != 2 || !strings.Contains(e, "--by") {
		t.Errorf("--by team: exit %d %s", code, e)
	}
	if code, _, e := runCLI(t, "", "usage", "--from", "yesterday"); code != 2 || !strings.Contains(e, "--from") {
		t.Errorf("--from yesterday: exit %d %s", code, e)
	}
}
