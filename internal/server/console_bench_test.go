package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyservice/keyservice/internal/config"
	"github.com/keyservice/keyservice/internal/testdb"
)

// BenchmarkConsolePages times every console page on a table of 100,000
// keys (KEYSERVICE_BENCH_CONSOLE_KEYS) with 30 days of usage: daily rows
// for the 10,000 newest keys, hourly rows for the 1,000 newest, two
// outcomes each. Each sub-benchmark reports its p50 and p99 in ms; the
// baseline is the REST ListKeys call of 50 keys in the same run (the
// console's keys page makes that call and draws it). Run with a fixed
// count: make bench-console.
func BenchmarkConsolePages(b *testing.B) {
	n := 100_000
	if v := os.Getenv("KEYSERVICE_BENCH_CONSOLE_KEYS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	u, pool := testdb.New(b)
	ctx := context.Background()
	began := time.Now()
	for _, q := range []string{
		`INSERT INTO api_keys (id, key_hash, hint, name, owner, created_at, revoked_at, enabled)
		 SELECT gen_random_uuid(), sha256(('bench-' || i)::bytea), 'ks_...' || lpad(to_hex(i % 65536), 4, '0'),
		        'customer key ' || i, 'owner-' || (i % 1000), now() - interval '365 days' + i * interval '1 minute',
		        CASE WHEN i % 100 = 0 THEN now() END, i % 50 <> 1
		 FROM generate_series(1, $1::int) i`,
		`INSERT INTO usage_days (bucket, key_id, code, keyspace_id, owner, calls, credits)
		 SELECT d, k.id, c, k.keyspace_id, k.owner, 100 + c * 7, 100
		 FROM (SELECT id, keyspace_id, owner FROM api_keys ORDER BY created_at DESC LIMIT 10000) k,
		      generate_series(date_trunc('day', now()) - interval '29 days', date_trunc('day', now()), interval '1 day') d,
		      (VALUES (1), (3)) codes(c)`,
		`INSERT INTO usage_hours (bucket, key_id, code, keyspace_id, owner, calls, credits)
		 SELECT h, k.id, c, k.keyspace_id, k.owner, 5 + c, 5
		 FROM (SELECT id, keyspace_id, owner FROM api_keys ORDER BY created_at DESC LIMIT 1000) k,
		      generate_series(date_trunc('hour', now()) - interval '719 hours', date_trunc('hour', now()), interval '1 hour') h,
		      (VALUES (1), (6)) codes(c)`,
		`ANALYZE`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, n)
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	var newest string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM api_keys ORDER BY created_at DESC LIMIT 1`).Scan(&newest); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d keys and their usage in %v", n, time.Since(began).Round(time.Millisecond))
	// One caller asks thousands of pages, each several calls, as fast as
	// they answer: past the per-caller default (1,000/s, burst 2,000).
	e := startOn(b, u, withConsole, withConfig(func(c *config.Config) { c.CallerRate, c.CallerBurst = 1e6, 1e6 }))
	e.waitReady(b)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(e.base+"/console/sign-in", url.Values{"token": {adminToken}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign-in: %v %v", resp, err)
	}
	resp.Body.Close()
	get := func(b *testing.B, path string, bearer bool) {
		req, _ := http.NewRequest("GET", e.base+path, nil)
		if bearer {
			req.Header.Set("Authorization", "Bearer "+adminToken)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	pages := []struct {
		name, path string
		bearer     bool
	}{
		{"baseline-REST-ListKeys-50", "/v1/keys?page_size=50&newest_first=true", true}, // what the keys page asks
		{"keys", "/console/keys", false},                                               // newest first
		{"keys-oldest-first", "/console/keys?order=oldest", false},
		{"keys-search-name", "/console/keys?q=" + url.QueryEscape("key 4242"), false},
		{"keys-search-hint", "/console/keys?q=0a1b", false},
		{"keys-state-revoked", "/console/keys?state=revoked", false},
		{"keys-state-disabled", "/console/keys?state=disabled", false},
		{"keys-owner", "/console/keys?owner=owner-7", false},
		{"key-page-30-days-usage", "/console/keys/" + newest, false},
		{"key-new", "/console/keys/new", false},
		{"audit", "/console/audit", false},
		{"keyspaces", "/console/keyspaces", false},
		{"credentials", "/console/credentials", false},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for range 3 {
				get(b, p.path, p.bearer) // warm
			}
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				get(b, p.path, p.bearer)
				took = append(took, time.Since(t0))
			}
			slices.Sort(took)
			at := func(q float64) float64 {
				return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
			}
			b.ReportMetric(at(0.5), "p50-ms")
			b.ReportMetric(at(0.99), "p99-ms")
		})
	}
}
