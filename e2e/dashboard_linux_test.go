package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
)

// dashboardWarmup lets the lab run longer before the failover (with some
// loss on broadband in its second half), for a screenshot with history in
// it: go test -run TestDashboardInBrowser -dashboard-warmup=5m ./e2e
var dashboardWarmup = flag.Duration("dashboard-warmup", 0, "how long the dashboard test measures before the failover")

// TestDashboardInBrowser opens the dashboard of a reachd in the lab in
// headless Chromium, cuts the upstream of the current path and expects the
// page to show the new current path and the transition within 2 s, at a
// desktop and a phone viewport, with no console error, a text label on
// every state and text contrast of at least 4.5:1.
func TestDashboardInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (scripts/install-deps.sh installs it)")
	}
	r := setup(t, hosts[0], labdaemon.Options{Dashboard: "127.0.0.1:9471"})
	if _, err := r.WaitRoute(false, labdaemon.Via(r.Top.ISP1, false), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	url := "http://" + forward(t, func(ctx context.Context) (net.Conn, error) {
		return r.Top.Router.DialContext(ctx, &net.Dialer{}, "tcp", "127.0.0.1:9471")
	}) + "/"

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	var consoleMu sync.Mutex
	var consoleErrs []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				consoleMu.Lock()
				consoleErrs = append(consoleErrs, m.String())
				consoleMu.Unlock()
			}
		}
	}()
	artifacts, err := os.MkdirTemp("", "reachd-dashboard-artifacts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", artifacts)

	// Desktop: the page, then a failover.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `current("internet") === "broadband" && document.getElementById("live").textContent === "live"`, 10*time.Second)
	waitJS(t, ctx, `[...document.querySelectorAll("#charts img")].length === 2 && [...document.querySelectorAll("#charts img")].every(i => i.complete && i.naturalWidth > 0)`, 10*time.Second)
	checkPage(t, ctx, "1280x800")

	time.Sleep(15 * time.Second) // a few 10 s intervals before the failover
	if w := *dashboardWarmup; w > 0 {
		time.Sleep(w / 2)
		if err := r.Top.ISP1.NS.Loss(r.Top.ISP1.UpIf, 4, lab.Both); err != nil {
			t.Fatal(err)
		}
		time.Sleep(w / 2)
		r.Top.Restore(1)
		waitJS(t, ctx, `current("internet") === "broadband"`, 10*time.Second)
	}
	cut := time.Now()
	if err := r.Top.CutUpstream(1); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `current("internet") === "lte" && [...document.querySelectorAll('#event-rows tr[data-kind="path-state"]')].some(tr => tr.textContent.includes("broadband") && tr.textContent.includes("→ down"))`, 5*time.Second)
	took := time.Since(cut)
	t.Logf("cut → new current path and event in the page: %v", took)
	if took > 2*time.Second {
		t.Errorf("the page showed the failover after %v, want within 2 s", took)
	}
	// Zoom: drag across the right end of the first chart, twice; every
	// chart follows and draws the failover up close.
	time.Sleep(5 * time.Second)
	zoomDrag(t, ctx, 0.9)  // 3 h → the last 18 min
	zoomDrag(t, ctx, 0.85) // → the last 2.7 min, at 10 s intervals
	waitJS(t, ctx, `!document.getElementById("unzoom").hidden && [...document.querySelectorAll("#charts img")].every(i => i.src.includes("from=") && i.complete && i.naturalWidth > 0)`, 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, filepath.Join(artifacts, "dashboard-1280x800.png"))
	checkPage(t, ctx, "1280x800 after failover")

	// A restart keeps the history and the events. While reachd is down the
	// page's stream fails to reconnect: those console errors are expected.
	checkConsole := func(when string) {
		time.Sleep(200 * time.Millisecond)
		consoleMu.Lock()
		defer consoleMu.Unlock()
		if len(consoleErrs) > 0 {
			t.Errorf("console errors %s:\n%s", when, strings.Join(consoleErrs, "\n"))
		}
		consoleErrs = nil
	}
	checkConsole("before the restart")
	r.Stop()
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	consoleMu.Lock()
	t.Logf("console while reachd restarted (expected): %q", consoleErrs)
	consoleErrs = nil
	consoleMu.Unlock()
	waitJS(t, ctx, `current("internet") === "lte" && [...document.querySelectorAll('#event-rows tr[data-kind="path-state"]')].some(tr => tr.textContent.includes("broadband") && tr.textContent.includes("up → down"))`, 10*time.Second)
	hist, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`fetch("api/history?series=path/internet/broadband&range=1h").then(r => r.json())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Points []struct{ Sent, Lost int }
		Marks  []struct{ State string }
	}
	json.Unmarshal(hist, &h)
	sent, lost := 0, 0
	for _, p := range h.Points {
		sent, lost = sent+p.Sent, lost+p.Lost
	}
	if sent == 0 || lost == 0 || len(h.Marks) == 0 {
		t.Errorf("after a restart, broadband's history has %d probes, %d lost, marks %v; want what was measured before", sent, lost, h.Marks)
	}

	// Phone.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, `current("internet") === "lte" && document.getElementById("live").textContent === "live"`, 10*time.Second)
	waitJS(t, ctx, `[...document.querySelectorAll("#charts img")].every(i => i.complete && i.naturalWidth > 0)`, 10*time.Second)
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`)); err != nil || w > 1 {
		t.Errorf("the phone page scrolls sideways by %d px (%v)", w, err)
	}
	checkPage(t, ctx, "390x844")
	shot(t, ctx, filepath.Join(artifacts, "dashboard-390x844.png"))

	checkConsole("after the restart")
}

// zoomDrag drags, with real mouse events, across the first chart's plot
// area from frac of its width to its right end (the chart's margins as
// svg.go draws them: 56 px left, 12 px right, scaled to the image).
func zoomDrag(t *testing.T, ctx context.Context, frac float64) {
	t.Helper()
	type span struct{ Left, Right, Y float64 }
	// The previous zoom reloads the images: measure a loaded one.
	waitJS(t, ctx, `(i => i.complete && i.naturalWidth > 0)(document.querySelector("#charts .plot img"))`, 10*time.Second)
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`(() => { const img = document.querySelector("#charts .plot img"); img.scrollIntoView({block: "center"});
		const r = img.getBoundingClientRect(); const k = r.width / img.naturalWidth;
		return {Left: r.left + 56 * k, Right: r.right - 12 * k, Y: r.top + r.height / 2}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	var sp span
	json.Unmarshal(raw, &sp)
	before, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("range-text").textContent`))
	from := sp.Left + frac*(sp.Right-sp.Left)
	if err := chromedp.Do(ctx, chromedp.DragAndDropXY(from, sp.Y, sp.Right+4, sp.Y)); err != nil {
		t.Fatalf("dragging across the chart: %v", err)
	}
	waitJS(t, ctx, `document.getElementById("range-text").textContent !== `+fmt.Sprintf("%q", before), 5*time.Second)
}

// helpers is evaluated before each check: current(service) reads the
// overview's current path from the DOM.
const helpers = `var current = s => { const e = document.querySelector('.current[data-service="' + s + '"]'); return e ? e.textContent : null; };`

func waitJS(t *testing.T, ctx context.Context, cond string, limit time.Duration) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { `+helpers+` return `+cond+`; })()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(limit)))
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", cond, err, html)
	}
}

// checkPage checks that every state badge names its state in text and
// that every visible text has a contrast of at least 4.5:1 against the
// background it is drawn on (WCAG 2 relative luminance, computed from the
// computed styles, translucent backgrounds composited).
func checkPage(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	type result struct {
		Badges   int      `json:"badges"`
		Unlabel  []string `json:"unlabelled"`
		Checked  int      `json:"checked"`
		Failures []struct {
			Text  string  `json:"text"`
			Ratio float64 `json:"ratio"`
			Color string  `json:"color"`
			BG    string  `json:"bg"`
		} `json:"failures"`
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](contrastJS))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var res result
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if res.Badges < 3 {
		t.Errorf("%s: %d state badges, want the mode and both paths", where, res.Badges)
	}
	for _, u := range res.Unlabel {
		t.Errorf("%s: a state shown without its name: %s", where, u)
	}
	if res.Checked < 20 {
		t.Errorf("%s: only %d texts checked for contrast", where, res.Checked)
	}
	for _, f := range res.Failures {
		t.Errorf("%s: contrast %.2f:1 < 4.5:1 for %q (%s on %s)", where, f.Ratio, f.Text, f.Color, f.BG)
	}
	t.Logf("%s: %d state badges labelled, %d texts with contrast ≥ 4.5:1", where, res.Badges, res.Checked)
}

const contrastJS = `(() => {
  const parse = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const blend = (top, bot) => ({r: top.r * top.a + bot.r * (1 - top.a), g: top.g * top.a + bot.g * (1 - top.a), b: top.b * top.a + bot.b * (1 - top.a), a: 1});
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bgOf = el => { const chain = []; for (let e = el; e; e = e.parentElement) chain.push(e);
    let bg = {r: 255, g: 255, b: 255, a: 1};
    for (const e of chain.reverse()) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) bg = blend(c, bg); }
    return bg; };
  const states = ["up", "down", "hold-down", "unknown", "path", "withdrawn", "best-effort", "undecided", "alive", "failed", "normal", "bypass", "forced-on", "forced-off", "auto"];
  const badges = [...document.querySelectorAll(".badge")];
  const unlabelled = badges.filter(b => !states.includes(b.textContent.trim()) || !b.className.split(" ").some(c => c.endsWith("-" + b.textContent.trim()))).map(b => b.outerHTML);
  const failures = []; let checked = 0; const seen = new Set();
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode; const el = n.parentElement;
    if (!n.textContent.trim() || seen.has(el) || el.closest("script, style, option")) continue;
    seen.add(el);
    const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.visibility === "hidden") continue;
    const bg = bgOf(el); const fg = blend(parse(cs.color), bg);
    const l1 = lum(fg), l2 = lum(bg); const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    checked++;
    if (ratio < 4.5) failures.push({text: n.textContent.trim().slice(0, 40), ratio: Math.round(ratio * 100) / 100, color: cs.color,
      bg: "rgb(" + Math.round(bg.r) + "," + Math.round(bg.g) + "," + Math.round(bg.b) + ")"});
  }
  return {badges: badges.length, unlabelled, checked, failures};
})()`

func shot(t *testing.T, ctx context.Context, file string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Error(err)
	}
}

// forward listens on the host's loopback and passes each connection to
// dial (a connection opened inside the router namespace, where reachd's
// dashboard listens on its own loopback). It returns the address.
func forward(t *testing.T, dial func(context.Context) (net.Conn, error)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			up, err := dial(ctx)
			cancel()
			if err != nil {
				fmt.Fprintln(os.Stderr, "dashboard forward:", err)
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	return ln.Addr().String()
}
