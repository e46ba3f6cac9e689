package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/engine"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
)

func testSnapshot() engine.Snapshot {
	at := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	return engine.Snapshot{Started: at, Config: "/etc/reachd.yaml", Services: []engine.ServiceSnapshot{
		{Name: "internet", Selection: "hunt", OnAllDown: "withdraw",
			Decision: policy.Decision{Ready: true, Current: "broadband", Active: []string{"broadband"}},
			Paths: []engine.PathSnapshot{
				{Name: "broadband", Priority: 10, State: monitor.Up, Probed: monitor.Up, Attempts: 5, LastAttempt: at, LastRTT: time.Millisecond, Reason: "first answer",
					Targets: []engine.TargetSnapshot{{Address: netip.MustParseAddr("203.0.113.8"), State: monitor.Up, Attempts: 5, LastAttempt: at, LastRTT: time.Millisecond}}},
				{Name: "lte", Priority: 20, State: monitor.HoldDown, Probed: monitor.HoldDown,
					Dampening: &engine.DampeningSnapshot{Penalty: 900, Flaps: 1}},
			}},
		{Name: "anycast", Selection: "ecmp", ECMP: true, OnAllDown: "withdraw",
			Decision: policy.Decision{Ready: true, Current: "s2", Active: []string{"s2", "s3"}},
			Paths: []engine.PathSnapshot{
				{Name: "s1", State: monitor.Up, Probed: monitor.Up, Weight: 1, Drained: true},
				{Name: "s2", State: monitor.Up, Probed: monitor.Up, Weight: 2, Usable: true},
				{Name: "s3", State: monitor.Up, Probed: monitor.Up, Weight: 1, Usable: true, Dynamic: true, Reason: "next-hop added at run time"},
			}},
		{Name: "dns", Selection: "hunt", OnAllDown: "withdraw", SharedFate: "all paths failed together",
			Decision: policy.Decision{Ready: true},
			Paths: []engine.PathSnapshot{
				{Name: "wan", State: monitor.Down, Probed: monitor.Up, Override: policy.ForceDown, Reason: "forced down by operator"},
			}},
		{Name: "new", Selection: "hunt", OnAllDown: "hold",
			Paths: []engine.PathSnapshot{{Name: "wan"}}},
	}}
}

// The seed's /path-info shape: hold-down shows as down, current-path is
// null when withdrawn or undecided, usable-paths only for ecmp services.
func TestPathInfoJSON(t *testing.T) {
	b, err := json.Marshal(pathInfoJSON(testSnapshot()))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"anycast":{"current-path":"s2","paths":{"s1":"up","s2":"up","s3":"up"},"usable-paths":["s2","s3"]},` +
		`"dns":{"current-path":null,"paths":{"wan":"down"}},` +
		`"internet":{"current-path":"broadband","paths":{"broadband":"up","lte":"down"}},` +
		`"new":{"current-path":null,"paths":{"wan":"unknown"}}}`
	if string(b) != want {
		t.Errorf("path-info\ngot  %s\nwant %s", b, want)
	}
}

func TestStatusJSON(t *testing.T) {
	st := statusJSON(testSnapshot(), apitype.Status{})
	addPinned(&st, map[string]map[string]int{"anycast": {"s2": 7}, "internet": {"broadband": 3}})
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back apitype.Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Config != "/etc/reachd.yaml" || !back.Started.Equal(testSnapshot().Started) || len(back.Services) != 4 {
		t.Fatalf("status %s", b)
	}
	inet, ac, dns, fresh := back.Services[0], back.Services[1], back.Services[2], back.Services[3]
	if inet.CurrentPath == nil || *inet.CurrentPath != "broadband" || !inet.Decided || inet.Withdrawn || inet.UsablePaths != nil {
		t.Errorf("internet %+v", inet)
	}
	bb, lte := inet.Paths[0], inet.Paths[1]
	if bb.State != "up" || bb.VectorPriority != 10 || bb.Attempts != 5 || bb.LastAttempt == nil || bb.LastChange != nil || bb.LastRTT != time.Millisecond ||
		len(bb.Targets) != 1 || bb.Targets[0].Address != "203.0.113.8" || bb.Targets[0].LastAttempt == nil || bb.Pinned != nil || bb.Override != "auto" {
		t.Errorf("broadband %+v", bb)
	}
	if lte.State != "hold-down" || lte.LastAttempt != nil || lte.Dampening == nil || lte.Dampening.Penalty != 900 || lte.Dampening.ReuseAt != nil {
		t.Errorf("lte %+v (dampening %+v)", lte, lte.Dampening)
	}
	if ac.Selection != "ecmp" || len(ac.UsablePaths) != 2 || !ac.Paths[0].Drained || ac.Paths[0].Usable || ac.Paths[1].Weight != 2 ||
		ac.Paths[1].Pinned == nil || *ac.Paths[1].Pinned != 7 || !ac.Paths[2].Dynamic || ac.Paths[2].Reason != "next-hop added at run time" {
		t.Errorf("anycast %s", mustJSON(ac))
	}
	if dns.CurrentPath != nil || !dns.Withdrawn || dns.SharedFate == "" || dns.Paths[0].Override != "down" || dns.Paths[0].Probed != "up" {
		t.Errorf("dns %+v", dns)
	}
	if fresh.Decided || fresh.Withdrawn || fresh.CurrentPath != nil || fresh.OnAllDown != "hold" || fresh.Paths[0].State != "unknown" {
		t.Errorf("undecided %+v", fresh)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The engine's errors reach the API as its 404 and 400, with their text.
func TestAPIError(t *testing.T) {
	nf := fmt.Errorf("service %q: %w", "x", engine.ErrNotFound)
	br := fmt.Errorf("%w: weight 0", engine.ErrBadRequest)
	other := errors.New("engine stopped")
	for _, c := range []struct {
		in   error
		kind error
	}{{nf, apitype.ErrNotFound}, {br, apitype.ErrBadRequest}, {other, nil}} {
		out := apiError(c.in)
		if out.Error() != c.in.Error() || !errors.Is(out, c.in) {
			t.Errorf("apiError(%v) = %v", c.in, out)
		}
		if c.kind != nil && !errors.Is(out, c.kind) {
			t.Errorf("apiError(%v) is not %v", c.in, c.kind)
		}
		if errors.Is(out, apitype.ErrNotFound) && c.kind != apitype.ErrNotFound || errors.Is(out, apitype.ErrBadRequest) && c.kind != apitype.ErrBadRequest {
			t.Errorf("apiError(%v) has the wrong kind", c.in)
		}
	}
	if apiError(nil) != nil {
		t.Error("apiError(nil) != nil")
	}
}

// A status written into an earlier one's memory is the status written
// afresh, and reuses its target slices and time values; a target that has
// no attempt yet gets no time, whatever the slot held.
func TestStatusJSONReusing(t *testing.T) {
	snap := testSnapshot()
	tp := &snap.Services[0].Paths[0]
	tp.Targets = append(tp.Targets, engine.TargetSnapshot{Address: netip.MustParseAddr("2001:db8::9"), State: monitor.Unknown})
	fresh := statusJSON(snap, apitype.Status{})
	prev := statusJSON(snap, apitype.Status{})
	stale := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range prev.Services {
		for j := range prev.Services[i].Paths {
			for k := range prev.Services[i].Paths[j].Targets {
				pt := &prev.Services[i].Paths[j].Targets[k]
				at := stale // each slot's own, as statusJSON makes them
				pt.Address, pt.Reason, pt.LastAttempt = "stale", "stale", &at
			}
		}
	}
	at0 := prev.Services[0].Paths[0].Targets[0].LastAttempt
	again := statusJSON(snap, prev)
	if !reflect.DeepEqual(again, fresh) {
		t.Fatalf("into an earlier status:\n%+v\nafresh:\n%+v", again, fresh)
	}
	if &again.Services[0].Paths[0].Targets[0] != &prev.Services[0].Paths[0].Targets[0] {
		t.Error("the earlier status's targets were not reused")
	}
	if again.Services[0].Paths[0].Targets[0].LastAttempt != at0 {
		t.Error("the earlier status's time value was not reused")
	}
}
