package heartbeat

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/dataplane/bypass"
)

var (
	addrA   = bypass.Item{Kind: bypass.RemoveAddress, Interface: "byp0", Addr: netip.MustParseAddr("192.0.2.50")}
	addrB   = bypass.Item{Kind: bypass.RemoveAddress, Interface: "byp1", Addr: netip.MustParseAddr("192.0.2.51")}
	linkX   = bypass.Item{Kind: bypass.LinkDown, Interface: "cubro0"}
	linkY   = bypass.Item{Kind: bypass.LinkDown, Interface: "cubro1"}
	H, N, B = bypass.Hold, bypass.Normal, bypass.Bypass
)

func states(kv ...any) map[string]State {
	m := map[string]State{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(State)
	}
	return m
}

func TestDecideThreshold(t *testing.T) {
	g := GroupSpec{Name: "g", Members: []string{"a", "b", "c"}, Threshold: 2}
	tests := []struct {
		name   string
		states map[string]State
		want   GroupMode
		reason string
	}{
		{"all alive", states("a", Alive, "b", Alive, "c", Alive), GroupNormal, "0 of 3 listeners failed (threshold 2)"},
		{"one below threshold", states("a", Failed, "b", Alive, "c", Alive), GroupNormal, "1 of 3 listeners failed (threshold 2): a"},
		{"reaches threshold", states("a", Failed, "b", Failed, "c", Alive), GroupBypass, "2 of 3 listeners failed (threshold 2): a, b"},
		{"above threshold", states("a", Failed, "b", Failed, "c", Failed), GroupBypass, "3 of 3 listeners failed (threshold 2): a, b, c"},
		{"unknown member, below", states("a", Failed, "b", Unknown, "c", Alive), GroupUnknown, "waiting for b to report"},
		{"unknown member, threshold reached anyway", states("a", Failed, "b", Failed, "c", Unknown), GroupBypass, "2 of 3 listeners failed (threshold 2): a, b"},
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
			{Name: "a", Local: []bypass.Item{linkY}},
			{Name: "b", Local: []bypass.Item{linkY}},
			{Name: "c", Local: []bypass.Item{addrA}},
		},
		Groups: []GroupSpec{{Name: "g", Members: []string{"a", "b", "c"}, Threshold: 2, Global: []bypass.Item{addrA, linkX}}},
	}
}

func desired(t *testing.T, st map[string]State, force map[string]Force) map[bypass.Item]bypass.Mode {
	t.Helper()
	d, _ := Desired(precedenceSpec(), st, force)
	return d
}

func check(t *testing.T, got map[bypass.Item]bypass.Mode, want map[bypass.Item]bypass.Mode) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("desired (-want +got):\n%s", d)
	}
}

func TestGlobalListFollowsGroup(t *testing.T) {
	check(t, desired(t, states("a", Alive, "b", Alive, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: N, linkX: N, linkY: N})
	check(t, desired(t, states("a", Failed, "b", Failed, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: B, linkX: B, linkY: B})
}

// Seed: "If an interface appears in multiple listeners' lists, it switches
// to bypass mode if any listener stops receiving signals. The interface
// returns to normal mode only if all listeners are active."
func TestSharedLocalListBypassIfAnyFails(t *testing.T) {
	check(t, desired(t, states("a", Failed, "b", Alive, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: N, linkX: N, linkY: B})
	check(t, desired(t, states("a", Alive, "b", Failed, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: N, linkX: N, linkY: B})
	check(t, desired(t, states("a", Alive, "b", Alive, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: N, linkX: N, linkY: N})
}

// Seed: "If an interface appears in both local and global settings, it
// remains in bypass mode until the corresponding listener starts receiving
// signals and the daemon switches to normal mode."
func TestLocalAndGlobalStaysUntilBothNormal(t *testing.T) {
	// Listener c failed, group normal (1 of 3 < 2): addrA in bypass by c.
	check(t, desired(t, states("a", Alive, "b", Alive, "c", Failed), nil), map[bypass.Item]bypass.Mode{addrA: B, linkX: N, linkY: N})
	// c alive again but the group in bypass (a, b failed): still bypass.
	check(t, desired(t, states("a", Failed, "b", Failed, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: B, linkX: B, linkY: B})
	// Both normal: restored.
	check(t, desired(t, states("a", Alive, "b", Alive, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: N, linkX: N, linkY: N})
}

// Seed: "During startup ... the daemon does not manage interfaces and IPs
// until all listeners report their statuses."
func TestUnknownHoldsEverything(t *testing.T) {
	check(t, desired(t, states("a", Failed, "b", Failed, "c", Unknown), nil), map[bypass.Item]bypass.Mode{addrA: H, linkX: H, linkY: H})
	check(t, desired(t, states("a", Alive, "b", Unknown, "c", Alive), nil), map[bypass.Item]bypass.Mode{addrA: H, linkX: H, linkY: H})
	_, dec := Desired(precedenceSpec(), states("a", Failed, "b", Failed, "c", Unknown), nil)
	if d := dec["g"]; d.Mode != GroupBypass || !d.Held {
		t.Errorf("decision %+v, want bypass held", d)
	}
}

func TestForceOnWinsOverHeartbeats(t *testing.T) {
	f := map[string]Force{"g": ForceOn}
	check(t, desired(t, states("a", Alive, "b", Alive, "c", Alive), f), map[bypass.Item]bypass.Mode{addrA: B, linkX: B, linkY: B})
	// Also at start-up, before anyone reported.
	check(t, desired(t, states(), f), map[bypass.Item]bypass.Mode{addrA: B, linkX: B, linkY: B})
}

func TestForceOffRestoresDespiteFailures(t *testing.T) {
	f := map[string]Force{"g": ForceOff}
	check(t, desired(t, states("a", Failed, "b", Failed, "c", Failed), f), map[bypass.Item]bypass.Mode{addrA: N, linkX: N, linkY: N})
}

func TestForceOnBeatsForceOffOfAnotherGroup(t *testing.T) {
	s := precedenceSpec()
	s.Groups = append(s.Groups, GroupSpec{Name: "h", Members: []string{"a"}, Threshold: 1, Global: []bypass.Item{addrB}})
	d, dec := Desired(s, states("a", Alive, "b", Alive, "c", Alive), map[string]Force{"g": ForceOff, "h": ForceOn})
	check(t, d, map[bypass.Item]bypass.Mode{addrA: N, addrB: B, linkX: N, linkY: B})
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
