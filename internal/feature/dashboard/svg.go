package dashboard

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"time"

	"github.com/reachd/reachd/internal/history"
)

// Chart geometry (the page's zoom maps mouse positions with the same
// margins).
const (
	marginLeft   = 56
	marginRight  = 12
	marginTop    = 14
	marginBottom = 26
)

// LossScale is SmokePing's loss scale: the median line's colour by the
// share of probes lost in the interval.
var LossScale = []struct {
	Label string
	Color string
}{
	{"0", "#1a9e00"},
	{"≤1 %", "#00a0e0"},
	{"≤5 %", "#0059ff"},
	{"≤10 %", "#5e00ff"},
	{"≤25 %", "#9b00d6"},
	{"≤50 %", "#dd00aa"},
	{"all but one", "#ff3300"},
	{"all", "#b00000"},
}

// lossClass maps an interval's loss to LossScale.
func lossClass(sent, lost uint32) int {
	if lost == 0 || sent == 0 {
		return 0
	}
	if lost >= sent {
		return 7
	}
	r := float64(lost) / float64(sent)
	switch {
	case sent >= 3 && sent-lost == 1:
		return 6
	case r <= 0.01:
		return 1
	case r <= 0.05:
		return 2
	case r <= 0.10:
		return 3
	case r <= 0.25:
		return 4
	case r <= 0.50:
		return 5
	}
	return 6
}

// StateColors are the colours of path states (always shown with their
// name: colour is never the only sign). Each has at least 4.5:1 contrast
// on white.
var StateColors = map[string]string{
	"up": "#1a7f37", "down": "#cf222e", "hold-down": "#9a6700", "unknown": "#57606a",
}

type chartSpec struct {
	Title         string
	From, To      time.Time
	Width, Height int
	View          history.View
	Loc           *time.Location
}

// renderChart draws a SmokePing-style chart: per interval, the RTT spread
// as grey bands (min–max, p10–p90, p25–p75, darker near the median), the
// median as a line coloured by loss, a bar at the top for intervals where
// every probe was lost, and state transitions as labelled vertical marks.
func renderChart(w io.Writer, c chartSpec) {
	bw := bufio.NewWriterSize(w, 32<<10)
	defer bw.Flush()
	pw := float64(c.Width - marginLeft - marginRight)
	ph := float64(c.Height - marginTop - marginBottom)
	span := float64(c.To.Sub(c.From))
	if span <= 0 {
		span = 1
	}
	xOf := func(t time.Time) float64 {
		return marginLeft + math.Max(0, math.Min(pw, float64(t.Sub(c.From))/span*pw))
	}
	ymax := 0.0
	for _, b := range c.View.Points {
		for _, i := range []int{5, history.Median} {
			if v := float64(b.Q[i]); !math.IsNaN(v) && v > ymax {
				ymax = v
			}
		}
	}
	ymax = niceCeil(ymax * 1.15)
	yOf := func(v float64) float64 {
		return marginTop + ph - math.Min(ph, math.Max(0, v/ymax*ph))
	}
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11" role="img" aria-label="%s">`,
		c.Width, c.Height, c.Width, c.Height, html.EscapeString("latency and loss of "+c.Title))
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="#ffffff"/>`, c.Width, c.Height)
	// Y grid and labels.
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		y := yOf(v)
		fmt.Fprintf(bw, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d0d7de" stroke-width="1"/>`, marginLeft, marginLeft+pw, y, y)
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end" fill="#24292f">%s</text>`, marginLeft-4, y+4, fmtMs(v))
	}
	fmt.Fprintf(bw, `<text x="4" y="%d" fill="#24292f">ms</text>`, marginTop-2)
	// X ticks.
	tick, layout := xTick(c.To.Sub(c.From))
	loc := c.Loc
	if loc == nil {
		loc = time.UTC
	}
	first := c.From.In(loc).Truncate(tick)
	if tick >= 24*time.Hour {
		y, m, dd := c.From.In(loc).Date()
		first = time.Date(y, m, dd, 0, 0, 0, 0, loc)
	}
	for t := first; !t.After(c.To); t = t.Add(tick) {
		if t.Before(c.From) {
			continue
		}
		x := xOf(t)
		fmt.Fprintf(bw, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#d0d7de" stroke-width="1"/>`, x, x, marginTop, marginTop+ph)
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#24292f">%s</text>`, x, marginTop+ph+16, t.In(loc).Format(layout))
	}
	// Intervals.
	step := c.View.Step
	for _, b := range c.View.Points {
		start := b.Start(step)
		x0, x1 := xOf(start), xOf(start.Add(step))
		wd := math.Max(1, x1-x0)
		cls := lossClass(b.Sent, b.Lost)
		fmt.Fprintf(bw, `<g><title>%s: median %s ms, %d of %d lost</title>`, start.In(loc).Format("Jan 2 15:04"), fmtMs(float64(b.Q[history.Median])), b.Lost, b.Sent)
		if math.IsNaN(float64(b.Q[history.Median])) {
			fmt.Fprintf(bw, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="%s" opacity="0.25"/>`, x0, marginTop, wd, ph, LossScale[cls].Color)
			fmt.Fprintf(bw, `<rect x="%.1f" y="%d" width="%.1f" height="4" fill="%s"/></g>`, x0, marginTop, wd, LossScale[cls].Color)
			continue
		}
		for _, band := range []struct {
			lo, hi  int
			opacity string
		}{{0, 6, "0.12"}, {1, 5, "0.22"}, {2, 4, "0.38"}} {
			ylo, yhi := yOf(float64(b.Q[band.lo])), yOf(float64(b.Q[band.hi]))
			fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3d4650" opacity="%s"/>`, x0, yhi, wd, math.Max(0.5, ylo-yhi), band.opacity)
		}
		ym := yOf(float64(b.Q[history.Median]))
		fmt.Fprintf(bw, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/></g>`, x0, x0+wd, ym, ym, LossScale[cls].Color)
	}
	// State transitions.
	for _, m := range c.View.Marks {
		t := time.UnixMilli(m.At)
		x := xOf(t)
		col := StateColors[m.State]
		if col == "" {
			col = "#57606a"
		}
		fmt.Fprintf(bw, `<g><title>%s → %s</title><line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="4 2"/>`,
			t.In(loc).Format("Jan 2 15:04:05"), html.EscapeString(m.State), x, x, marginTop, marginTop+ph, col)
		// The label goes right of the mark, or left of it near the right edge.
		lx, anchor := x+3, "start"
		if x > marginLeft+pw-60 {
			lx, anchor = x-3, "end"
		}
		fmt.Fprintf(bw, `<text x="%.1f" y="%d" fill="%s" font-size="10" text-anchor="%s">%s</text></g>`, lx, marginTop+9, col, anchor, html.EscapeString(m.State))
	}
	if len(c.View.Points) == 0 {
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#57606a">no measurements in this range</text>`, marginLeft+pw/2, marginTop+ph/2)
	}
	fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#8c959f"/>`, marginLeft, marginTop, pw, ph)
	bw.WriteString(`</svg>`)
}

func fmtMs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// xTick picks a tick interval giving about six labels.
func xTick(span time.Duration) (time.Duration, string) {
	for _, t := range []time.Duration{
		time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	} {
		if span/t <= 8 {
			return t, "15:04"
		}
	}
	for _, t := range []time.Duration{24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour} {
		if span/t <= 8 {
			return t, "Jan 2"
		}
	}
	return 14 * 24 * time.Hour, "Jan 2"
}
