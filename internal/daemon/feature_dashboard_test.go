package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// TestDashboardFeature runs a daemon with the dashboard on loopback and
// an API token file: the overview follows the engine, a dashboard action
// needs a token of api.token-file and forces the path, and overrides and
// reloads reach the event feed.
func TestDashboardFeature(t *testing.T) {
	port := freePort(t)
	tokenDir := t.TempDir()
	tokenFile := filepath.Join(tokenDir, "tokens")
	const token = "0123456789abcdef0123"
	if err := os.WriteFile(tokenFile, []byte("ops "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := strings.NewReplacer("METRICS", fmt.Sprint(freePort(t)), "CLOSED", fmt.Sprint(freePort(t))).Replace(loopbackConfig)
	cfgText = strings.Replace(cfgText, "api:\n", "api:\n  token-file: "+tokenFile+"\n", 1)
	cfgText += fmt.Sprintf("dashboard:\n  listen: \":%d\"\n", port)
	// A heartbeat listener that hears nothing: it fails and its group
	// enters bypass (no bypass actions, so nothing in the kernel changes).
	cfgText += "heartbeats:\n  listeners:\n    - name: ips1\n      listen: 127.0.0.1:0\n      timeout: 100ms\n  groups:\n    - name: inspection\n      failed-threshold: 1\n"
	c, _, _ := startDaemon(t, cfgText)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	var ov apitype.DashboardOverview
	get := func(path string, v any) {
		t.Helper()
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	waitOverview := func(cond func() bool) {
		t.Helper()
		for i := 0; i < 300 && !cond(); i++ {
			time.Sleep(20 * time.Millisecond)
			get("/api/overview", &ov)
		}
		if !cond() {
			t.Fatalf("overview: %+v", ov)
		}
	}
	waitOverview(func() bool {
		return len(ov.Services) == 1 && ov.Services[0].Current == "broadband" && ov.Services[0].Since != nil && ov.Actions
	})
	waitOverview(func() bool {
		hb := ov.Heartbeats
		return len(hb.Listeners) == 1 && hb.Listeners[0].State == "failed" && len(hb.Groups) == 1 && hb.Groups[0].Effective == "bypass"
	})

	post := func(auth string) int {
		req, _ := http.NewRequest("POST", base+"/api/actions/override", strings.NewReader(`{"service":"internet","path":"broadband","status":"down"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := post("Bearer not-the-token-at-all"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code := post("Bearer " + token); code != http.StatusOK {
		t.Fatalf("token of api.token-file: %d", code)
	}
	waitOverview(func() bool { return ov.Services[0].Mode == "withdrawn" && ov.Services[0].Paths[0].Override == "down" })
	// The overview reads the engine; the override and decision events come
	// from the dashboard recorder's goroutine, later. Wait for them before
	// the reload, so that the reload's event is the newest below.
	var evs []apitype.Event
	waitCond(t, "the override and the withdrawn decision in the event feed", 5*time.Second, func() bool {
		get("/api/events?kind=override,decision", &evs)
		return len(evs) >= 2 && evs[0].Kind == apitype.EventDecision && evs[0].To == "withdrawn"
	})

	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		get("/api/events?kind=override,reload,decision", &evs)
		if len(evs) >= 3 && evs[0].Kind == apitype.EventReload {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	kinds := map[string]apitype.Event{}
	for _, e := range evs {
		if _, ok := kinds[e.Kind]; !ok {
			kinds[e.Kind] = e
		}
	}
	if e := kinds["override"]; e.Subject != "broadband" || e.To != "down" {
		t.Errorf("override event: %+v (all: %+v)", e, evs)
	}
	if e := kinds["decision"]; e.To != "withdrawn" {
		t.Errorf("decision event: %+v", e)
	}
	if e := kinds["reload"]; e.To != "applied" {
		t.Errorf("reload event: %+v", e)
	}
	get("/api/events?kind=bypass,listener", &evs)
	if len(evs) < 2 {
		t.Errorf("heartbeat events: %+v", evs)
	}

	// The history of the probes is there.
	var h apitype.DashHistory
	get("/api/history?series=path/internet/broadband&range=1h", &h)
	if len(h.Points) == 0 || h.Points[len(h.Points)-1].Sent == 0 {
		t.Errorf("history: %+v", h)
	}
}
