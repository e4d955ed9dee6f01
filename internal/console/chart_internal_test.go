package console

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

func TestNum(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 1e15: "1,000,000,000,000,000"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}

// Each point lands in its own bucket, the first and the last included;
// points outside the window are left out; codes fall in their groups.
func TestCallsChartBuckets(t *testing.T) {
	start := time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
	pt := func(at time.Time, code keyservicev1.Code, calls int64) *keyservicev1.UsagePoint {
		return &keyservicev1.UsagePoint{Start: timestamppb.New(at), Counts: []*keyservicev1.UsageCount{{Code: code, Calls: calls}}}
	}
	res := &keyservicev1.GetUsageResponse{Series: []*keyservicev1.UsageSeries{{Points: []*keyservicev1.UsagePoint{
		pt(start, keyservicev1.Code_CODE_VALID, 3),
		pt(start.AddDate(0, 0, 29), keyservicev1.Code_CODE_RATE_LIMITED, 2),
		pt(start.AddDate(0, 0, 29), keyservicev1.Code_CODE_NOT_FOUND, 1),
		pt(start.AddDate(0, 0, 30), keyservicev1.Code_CODE_VALID, 100), // after the window
		pt(start.AddDate(0, 0, -1), keyservicev1.Code_CODE_VALID, 100), // before it
	}}}}
	ch := callsChart("c", "t", res, start, 30, 24*time.Hour, "Jan 2", 5)
	if ch.Summary != "3 valid, 2 over a limit, 1 refused." {
		t.Fatalf("summary %q", ch.Summary)
	}
	if len(ch.Bars) != 30 || len(ch.Rows) != 2 || ch.Rows[0].Label != "Nov 5" || ch.Rows[1].Label != "Dec 4" {
		t.Fatalf("bars %d, rows %+v", len(ch.Bars), ch.Rows)
	}
	if ch.Max != 3 {
		t.Fatalf("max %d", ch.Max)
	}
	// The tallest bar fills the plot; the last bar stacks two segments
	// with their patterns; every bar's title has its numbers.
	if h := ch.Bars[0].Segs[0].H; h != plotH {
		t.Errorf("the tallest bar is %v high, want %v", h, plotH)
	}
	last := ch.Bars[29]
	if len(last.Segs) != 2 || last.Segs[0].Fill != "url(#c-hatch)" || last.Segs[1].Fill != "url(#c-dots)" {
		t.Errorf("last bar: %+v", last.Segs)
	}
	if !strings.Contains(last.Title, "over a limit 2") || !strings.Contains(last.Title, "refused 1") {
		t.Errorf("last bar's title %q", last.Title)
	}
	// No usage at all: no bar, no division by zero.
	empty := callsChart("e", "t", &keyservicev1.GetUsageResponse{}, start, 24, time.Hour, "15:04", 3)
	for _, b := range empty.Bars {
		if len(b.Segs) != 0 {
			t.Fatal("a bar drawn without usage")
		}
	}
}
