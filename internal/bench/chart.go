package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

var modeColour = map[string]string{"keyservice": "#2b6cb0", "ceiling": "#a0aec0", "naive": "#dd6b20"}

// WriteSVG draws four panels (throughput and p99, for gRPC and for REST):
// one group of bars per scenario, one bar per mode.
func (rep *Report) WriteSVG(w io.Writer) error {
	var scenarios, modes []string
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if !seen["s"+r.Scenario] {
			seen["s"+r.Scenario] = true
			scenarios = append(scenarios, r.Scenario)
		}
		if !seen["m"+r.Mode] {
			seen["m"+r.Mode] = true
			modes = append(modes, r.Mode)
		}
	}
	type panel struct {
		title, transport string
		value            func(Result) float64
	}
	panels := []panel{
		{"gRPC throughput (req/s)", "grpc", func(r Result) float64 { return r.RPS }},
		{"REST throughput (req/s)", "rest", func(r Result) float64 { return r.RPS }},
		{"gRPC p99 latency (ms)", "grpc", func(r Result) float64 { return r.Latency.P99 }},
		{"REST p99 latency (ms)", "rest", func(r Result) float64 { return r.Latency.P99 }},
	}
	const pw, ph, top, left, bottom = 560, 260, 40, 70, 50
	width, height := 2*pw+40, 2*(ph+top+bottom)+40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, p := range panels {
		ox := 20 + (i%2)*(pw+20)
		oy := 20 + (i/2)*(ph+top+bottom)
		maxV := 0.0
		for _, r := range rep.Results {
			if r.Transport == p.transport {
				maxV = math.Max(maxV, p.value(r))
			}
		}
		if maxV == 0 {
			maxV = 1
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", ox, oy+15, html.EscapeString(p.title))
		plotW, plotH := pw-left-10, ph
		x0, y0 := ox+left, oy+top+plotH
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, y0, x0+plotW, y0)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0, y0, x0, y0-plotH)
		for t := 0; t <= 4; t++ {
			v := maxV * float64(t) / 4
			y := y0 - int(float64(plotH)*float64(t)/4)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0-4, y+4, short(v))
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#e2e8f0"/>`+"\n", x0+1, y, x0+plotW, y)
		}
		groupW := plotW / max(len(scenarios), 1)
		barW := (groupW - 10) / max(len(modes), 1)
		for si, sc := range scenarios {
			gx := x0 + si*groupW + 5
			for mi, m := range modes {
				r := rep.find(m, sc, p.transport)
				if r == nil {
					continue
				}
				h := int(float64(plotH) * p.value(*r) / maxV)
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s %s %s: %s</title></rect>`+"\n",
					gx+mi*barW, y0-h, barW-1, h, modeColour[m], sc, p.transport, m, short(p.value(*r)))
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", gx+groupW/2-5, y0+14, sc)
		}
		for mi, m := range modes {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
				x0+mi*100, y0+24, modeColour[m], x0+mi*100+14, y0+33, m)
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
