package threshold

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/monitor/liveness"
)

var (
	addrA   = Item{Kind: RemoveAddress, Interface: "byp0", Addr: netip.MustParseAddr("192.0.2.50")}
	addrB   = Item{Kind: RemoveAddress, Interface: "byp1", Addr: netip.MustParseAddr("192.0.2.51")}
	linkX   = Item{Kind: LinkDown, Interface: "cubro0"}
	linkY   = Item{Kind: LinkDown, Interface: "cubro1"}
	H, N, B = Hold, Normal, Bypass
)

func states(kv ...any) map[string]liveness.State {
	m := map[string]liveness.State{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(liveness.State)
	}
	return m
}

func TestDecideThreshold(t *testing.T) {
	g := GroupSpec{Name: "g", Members: []string{"a", "b", "c"}, Threshold: 2}
	tests := []struct {
		name   string
		states map[string]liveness.State
		want   GroupMode
		reason string
	}{
		{"all alive", states("a", liveness.Alive, "b", liveness.Alive, "c", liveness.Alive), GroupNormal, "0 of 3 listeners failed (threshold 2)"},
		{"one below threshold", states("a", liveness.Failed, "b", liveness.Alive, "c", liveness.Alive), GroupNormal, "1 of 3 listeners failed (threshold 2): a"},
		{"reaches threshold", states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Alive), GroupBypass, "2 of 3 listeners failed (threshold 2): a, b"},
		{"above threshold", states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Failed), GroupBypass, "3 of 3 listeners failed (threshold 2): a, b, c"},
		{"unknown member, below", states("a", liveness.Failed, "b", liveness.Unknown, "c", liveness.Alive), GroupUnknown, "waiting for b to report"},
		{"unknown member, threshold reached anyway", states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Unknown), GroupBypass, "2 of 3 listeners failed (threshold 2): a, b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(g, tt.states)
			if d.Mode != tt.want || d.Reason != tt.reason {
				t.Errorf("Decide = %v %q, want %v %q", d.Mode, d.Reason, tt.want, tt.reason)
			}
		})
	}
}

// spec: listeners a, b, c; group g over all with threshold 2 and global
// addrA + linkX; a's local list has linkY, b's local list has linkY too,
// c's local list has addrA (in both a local and the global list).
func precedenceSpec() Spec {
	return Spec{
		Listeners: []ListenerSpec{
			{Name: "a", Local: []Item{linkY}},
			{Name: "b", Local: []Item{linkY}},
			{Name: "c", Local: []Item{addrA}},
		},
		Groups: []GroupSpec{{Name: "g", Members: []string{"a", "b", "c"}, Threshold: 2, Global: []Item{addrA, linkX}}},
	}
}

func desired(t *testing.T, st map[string]liveness.State, force map[string]Force) map[Item]Mode {
	t.Helper()
	d, _ := Desired(precedenceSpec(), st, force)
	return d
}

func check(t *testing.T, got map[Item]Mode, want map[Item]Mode) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("desired (-want +got):\n%s", d)
	}
}

func TestGlobalListFollowsGroup(t *testing.T) {
	check(t, desired(t, states("a", liveness.Alive, "b", liveness.Alive, "c", liveness.Alive), nil), map[Item]Mode{addrA: N, linkX: N, linkY: N})
	check(t, desired(t, states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Alive), nil), map[Item]Mode{addrA: B, linkX: B, linkY: B})
}

// Seed: "If an interface appears in multiple listeners' lists, it switches
// to bypass mode if any listener stops receiving signals. The interface
// returns to normal mode only if all listeners are active."
func TestSharedLocalListBypassIfAnyFails(t *testing.T) {
	check(t, desired(t, states("a", liveness.Failed, "b", liveness.Alive, "c", liveness.Alive), nil), map[Item]Mode{addrA: N, linkX: N, linkY: B})
	check(t, desired(t, states("a", liveness.Alive, "b", liveness.Failed, "c", liveness.Alive), nil), map[Item]Mode{addrA: N, linkX: N, linkY: B})
	check(t, desired(t, states("a", liveness.Alive, "b", liveness.Alive, "c", liveness.Alive), nil), map[Item]Mode{addrA: N, linkX: N, linkY: N})
}

// Seed: "If an interface appears in both local and global settings, it
// remains in bypass mode until the corresponding listener starts receiving
// signals and the daemon switches to normal mode."
func TestLocalAndGlobalStaysUntilBothNormal(t *testing.T) {
	// Listener c failed, group normal (1 of 3 < 2): addrA in bypass by c.
	check(t, desired(t, states("a", liveness.Alive, "b", liveness.Alive, "c", liveness.Failed), nil), map[Item]Mode{addrA: B, linkX: N, linkY: N})
	// c alive again but the group in bypass (a, b failed): still bypass.
	check(t, desired(t, states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Alive), nil), map[Item]Mode{addrA: B, linkX: B, linkY: B})
	// Both normal: restored.
	check(t, desired(t, states("a", liveness.Alive, "b", liveness.Alive, "c", liveness.Alive), nil), map[Item]Mode{addrA: N, linkX: N, linkY: N})
}

// Seed: "During startup ... the daemon does not manage interfaces and IPs
// until all listeners report their statuses."
func TestUnknownHoldsEverything(t *testing.T) {
	check(t, desired(t, states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Unknown), nil), map[Item]Mode{addrA: H, linkX: H, linkY: H})
	check(t, desired(t, states("a", liveness.Alive, "b", liveness.Unknown, "c", liveness.Alive), nil), map[Item]Mode{addrA: H, linkX: H, linkY: H})
	_, dec := Desired(precedenceSpec(), states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Unknown), nil)
	if d := dec["g"]; d.Mode != GroupBypass || !d.Held {
		t.Errorf("decision %+v, want bypass held", d)
	}
}

func TestForceOnWinsOverHeartbeats(t *testing.T) {
	f := map[string]Force{"g": ForceOn}
	check(t, desired(t, states("a", liveness.Alive, "b", liveness.Alive, "c", liveness.Alive), f), map[Item]Mode{addrA: B, linkX: B, linkY: B})
	// Also at start-up, before anyone reported.
	check(t, desired(t, states(), f), map[Item]Mode{addrA: B, linkX: B, linkY: B})
}

func TestForceOffRestoresDespiteFailures(t *testing.T) {
	f := map[string]Force{"g": ForceOff}
	check(t, desired(t, states("a", liveness.Failed, "b", liveness.Failed, "c", liveness.Failed), f), map[Item]Mode{addrA: N, linkX: N, linkY: N})
}

func TestForceOnBeatsForceOffOfAnotherGroup(t *testing.T) {
	s := precedenceSpec()
	s.Groups = append(s.Groups, GroupSpec{Name: "h", Members: []string{"a"}, Threshold: 1, Global: []Item{addrB}})
	d, dec := Desired(s, states("a", liveness.Alive, "b", liveness.Alive, "c", liveness.Alive), map[string]Force{"g": ForceOff, "h": ForceOn})
	check(t, d, map[Item]Mode{addrA: N, addrB: B, linkX: N, linkY: B})
	if dec["h"].Force != ForceOn || dec["g"].Force != ForceOff {
		t.Errorf("decisions %+v", dec)
	}
}

func TestParseForce(t *testing.T) {
	for in, want := range map[string]Force{"force-on": ForceOn, "on": ForceOn, "force-off": ForceOff, "off": ForceOff, "auto": Auto} {
		if got, err := ParseForce(in); err != nil || got != want {
			t.Errorf("ParseForce(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseForce("maybe"); err == nil {
		t.Error("ParseForce(maybe) accepted")
	}
}
