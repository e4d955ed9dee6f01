package console

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// A chart is drawn by the server as SVG (presentation attributes, no
// style attribute, no script) with its numbers as a table beside it. The
// series differ by fill pattern as well as by colour, and each bar's
// <title> gives its numbers to a pointer or a screen reader.
type chart struct {
	ID      string // unique on the page: the patterns' ids start with it
	Title   string
	Summary string // one sentence with the totals
	Series  []series
	Bars    []bar
	Ticks   []tick
	Max     int64
	Rows    []row // the numbers, one row per bucket with any
	Columns []string
}

type series struct {
	Label, Colour, Pattern string // Pattern: "" solid, "hatch", "dots"
}

type bar struct {
	X, W  float64
	Segs  []seg
	Title string
}

type seg struct {
	Y, H float64
	Fill string // a colour, or url(#pattern)
}

type tick struct {
	X    float64
	Text string
}

type row struct {
	Label  string
	Values []int64
}

// The drawing's size, in SVG units (the image scales to its box).
const (
	chartW, chartH = 720.0, 180.0
	plotTop        = 12.0
	plotH          = chartH - plotTop - 24 // room for the labels under the bars
)

// Fill is the fill of series i of chart id.
func (ch *chart) Fill(i int) string {
	if s := ch.Series[i]; s.Pattern != "" {
		return "url(#" + ch.ID + "-" + s.Pattern + ")"
	}
	return ch.Series[i].Colour
}

// draw lays out buckets (values[b][s]: bucket b, series s) as stacked bars.
func (ch *chart) draw(labels []string, values [][]int64, every int) {
	n := len(labels)
	var most int64
	for _, v := range values {
		var sum int64
		for _, x := range v {
			sum += x
		}
		most = max(most, sum)
	}
	ch.Max = most
	step := chartW / float64(n)
	for b := range n {
		x := float64(b) * step
		br := bar{X: x + 1, W: step - 2}
		y := plotTop + plotH
		var parts []string
		for s, v := range values[b] {
			if v > 0 && most > 0 {
				h := float64(v) / float64(most) * plotH
				y -= h
				br.Segs = append(br.Segs, seg{Y: y, H: h, Fill: ch.Fill(s)})
			}
			parts = append(parts, fmt.Sprintf("%s %d", ch.Series[s].Label, v))
		}
		br.Title = labels[b] + ": " + join(parts)
		ch.Bars = append(ch.Bars, br)
		if b%every == 0 && x+step/2 > 16 { // a label cut by the left edge is left out
			ch.Ticks = append(ch.Ticks, tick{X: x + step/2, Text: labels[b]})
		}
		var some bool
		for _, v := range values[b] {
			some = some || v != 0
		}
		if some {
			ch.Rows = append(ch.Rows, row{Label: labels[b], Values: values[b]})
		}
	}
	for _, s := range ch.Series {
		ch.Columns = append(ch.Columns, s.Label)
	}
}

func join(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out
}

// callSeries are the calls charts' series: what the key's callers were
// told, in three groups.
var callSeries = []series{
	{Label: "valid", Colour: "#1a7f37"},
	{Label: "over a limit", Colour: "#9a6700", Pattern: "hatch"},
	{Label: "refused", Colour: "#cf222e", Pattern: "dots"},
}

// group is the series a code's calls are counted in.
func group(c keyservicev1.Code) int {
	switch c {
	case keyservicev1.Code_CODE_VALID:
		return 0
	case keyservicev1.Code_CODE_RATE_LIMITED, keyservicev1.Code_CODE_USAGE_EXCEEDED:
		return 1
	}
	return 2
}

// usageCharts reads the key's usage (hours of the last day, days of the
// last 30) and draws calls by outcome for both and credits spent by day;
// the string says why there are none.
func (c *console) usageCharts(r *http.Request, s session, id string) (day, month, credits *chart, why string) {
	ctx := c.callAs(r, s.token)
	now := c.now().UTC()
	hourStart := now.Truncate(time.Hour).Add(-23 * time.Hour)
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -29)
	hours, err := c.svc.GetUsage(ctx, &keyservicev1.GetUsageRequest{KeyId: id, From: timestamppb.New(hourStart), To: timestamppb.New(now),
		Granularity: keyservicev1.Granularity_GRANULARITY_HOUR})
	if err != nil {
		return nil, nil, nil, sectionError(err, "usage.read")
	}
	days, err := c.svc.GetUsage(ctx, &keyservicev1.GetUsageRequest{KeyId: id, From: timestamppb.New(dayStart), To: timestamppb.New(now),
		Granularity: keyservicev1.Granularity_GRANULARITY_DAY})
	if err != nil {
		return nil, nil, nil, sectionError(err, "usage.read")
	}
	day = callsChart("usage-24h", "Calls by outcome, last 24 hours (UTC)", hours, hourStart, 24, time.Hour, "15:04", 3)
	month = callsChart("usage-30d", "Calls by outcome, last 30 days (UTC)", days, dayStart, 30, 24*time.Hour, "Jan 2", 5)
	credits = creditsChart(days, dayStart)
	return day, month, credits, ""
}

// bucketsOf adds up the response's points by bucket (n buckets of width
// from start); f gives a point's values.
func bucketsOf(res *keyservicev1.GetUsageResponse, start time.Time, n int, width time.Duration, size int, f func(*keyservicev1.UsagePoint, []int64)) [][]int64 {
	out := make([][]int64, n)
	for i := range out {
		out[i] = make([]int64, size)
	}
	for _, sr := range res.GetSeries() {
		for _, p := range sr.GetPoints() {
			i := int(p.GetStart().AsTime().Sub(start) / width)
			if i >= 0 && i < n {
				f(p, out[i])
			}
		}
	}
	return out
}

func labelsOf(start time.Time, n int, width time.Duration, layout string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = start.Add(time.Duration(i) * width).Format(layout)
	}
	return out
}

func callsChart(id, title string, res *keyservicev1.GetUsageResponse, start time.Time, n int, width time.Duration, layout string, every int) *chart {
	ch := &chart{ID: id, Title: title, Series: callSeries}
	values := bucketsOf(res, start, n, width, len(callSeries), func(p *keyservicev1.UsagePoint, v []int64) {
		for _, c := range p.GetCounts() {
			v[group(c.GetCode())] += c.GetCalls()
		}
	})
	ch.draw(labelsOf(start, n, width, layout), values, every)
	var tot [3]int64
	for _, v := range values {
		for i := range v {
			tot[i] += v[i]
		}
	}
	ch.Summary = fmt.Sprintf("%s valid, %s over a limit, %s refused.", num(tot[0]), num(tot[1]), num(tot[2]))
	return ch
}

func creditsChart(res *keyservicev1.GetUsageResponse, start time.Time) *chart {
	ch := &chart{ID: "credits-30d", Title: "Credits spent, last 30 days (UTC)",
		Series: []series{{Label: "by Validate", Colour: "#1a56db"}, {Label: "reported", Colour: "#6e40c9", Pattern: "hatch"}}}
	values := bucketsOf(res, start, 30, 24*time.Hour, 2, func(p *keyservicev1.UsagePoint, v []int64) {
		v[0] += p.GetCredits()
		v[1] += p.GetReportedCredits()
	})
	ch.draw(labelsOf(start, 30, 24*time.Hour, "Jan 2"), values, 5)
	var a, b int64
	for _, v := range values {
		a, b = a+v[0], b+v[1]
	}
	ch.Summary = fmt.Sprintf("%s credits spent by Validate, %s reported.", num(a), num(b))
	return ch
}

// num writes n with thousands separators.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
