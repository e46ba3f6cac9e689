// Package threshold is the heartbeat groups' rule, pure: a group whose
// failed listeners meet its threshold is in bypass, and every bypass item
// (an address to remove, a link to set down) gets the mode its groups and
// listeners vote for. internal/dataplane/bypass applies the items.
package threshold

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/reachd/reachd/internal/monitor/liveness"
)

// GroupMode is a threshold group's decision.
//
//	Unknown ──every member reported──► Normal ◄──failed < threshold──┐
//	                                     └──failed ≥ threshold──► Bypass
type GroupMode int

const (
	GroupUnknown GroupMode = iota
	GroupNormal
	GroupBypass
)

func (m GroupMode) String() string {
	switch m {
	case GroupNormal:
		return "normal"
	case GroupBypass:
		return "bypass"
	}
	return "unknown"
}

// Force is an operator's override of a group (reachctl bypass ...).
type Force int

const (
	Auto     Force = iota
	ForceOn        // bypass regardless of heartbeats
	ForceOff       // normal regardless of heartbeats
)

func (f Force) String() string {
	switch f {
	case ForceOn:
		return "force-on"
	case ForceOff:
		return "force-off"
	}
	return "auto"
}

// ParseForce reads "force-on", "force-off" or "auto" (also "on", "off").
func ParseForce(s string) (Force, error) {
	switch s {
	case "force-on", "on":
		return ForceOn, nil
	case "force-off", "off":
		return ForceOff, nil
	case "auto":
		return Auto, nil
	}
	return Auto, fmt.Errorf("%q is not a bypass mode; use force-on, force-off or auto", s)
}

// ListenerSpec is a listener's name and local action list.
type ListenerSpec struct {
	Name  string
	Local []Item
}

// GroupSpec is a group's members, threshold and global action list.
type GroupSpec struct {
	Name      string
	Members   []string
	Threshold int
	Global    []Item
}

// Spec is what the policy needs of the config.
type Spec struct {
	Listeners []ListenerSpec
	Groups    []GroupSpec
}

// GroupDecision is a group's mode and why.
type GroupDecision struct {
	Mode  GroupMode
	Force Force
	// Held is set while not every listener has reported: the group's
	// heartbeat-driven actions wait (start-up is unknown).
	Held   bool
	Reason string
}

// Decide is the group threshold (seed: "If the number of failed listeners
// meets or exceeds the threshold (LISTEN_HEARTBEAT_FAILED), the daemon
// switches to bypass mode"; below it, normal). A group with a member still
// unknown and fewer failures than the threshold is unknown.
func Decide(g GroupSpec, states map[string]liveness.State) GroupDecision {
	var failed, unknown []string
	for _, m := range g.Members {
		switch states[m] {
		case liveness.Failed:
			failed = append(failed, m)
		case liveness.Unknown:
			unknown = append(unknown, m)
		}
	}
	n := len(failed)
	switch {
	case n >= g.Threshold:
		return GroupDecision{Mode: GroupBypass, Reason: fmt.Sprintf("%d of %d listeners failed (threshold %d): %s", n, len(g.Members), g.Threshold, strings.Join(failed, ", "))}
	case len(unknown) > 0:
		return GroupDecision{Mode: GroupUnknown, Reason: "waiting for " + strings.Join(unknown, ", ") + " to report"}
	}
	r := fmt.Sprintf("%d of %d listeners failed (threshold %d)", n, len(g.Members), g.Threshold)
	if n > 0 {
		r += ": " + strings.Join(failed, ", ")
	}
	return GroupDecision{Mode: GroupNormal, Reason: r}
}

// Desired computes every group's decision and the mode of every action
// item. The rules, from the seed's "Local and Global States":
//
//   - Start-up is unknown: until every listener has a status, nothing
//     heartbeat-driven changes (Hold), so a restarted daemon keeps the
//     previous run's state.
//   - A global item follows its group; a local item follows its
//     listener (failed → bypass, alive → normal).
//   - An item in several lists (several listeners' local lists, or a local
//     and a global list) is in bypass if any of its owners says bypass, and
//     returns to normal only when every owner says normal.
//   - A forced group wins over heartbeats for its global items and for the
//     local items of its members (force-on beats force-off when a listener
//     is in two forced groups); forcing acts at once, also at start-up.
func Desired(spec Spec, states map[string]liveness.State, force map[string]Force) (map[Item]Mode, map[string]GroupDecision) {
	settled := true
	for _, l := range spec.Listeners {
		if states[l.Name] == liveness.Unknown {
			settled = false
		}
	}
	decisions := map[string]GroupDecision{}
	memberForce := map[string]Force{}
	for _, g := range spec.Groups {
		d := Decide(g, states)
		d.Force = force[g.Name]
		if !settled && d.Mode != GroupUnknown {
			d.Held = true
		}
		decisions[g.Name] = d
		for _, m := range g.Members {
			if d.Force == ForceOn || (d.Force == ForceOff && memberForce[m] != ForceOn) {
				memberForce[m] = d.Force
			}
		}
	}
	out := map[Item]Mode{}
	vote := func(it Item, m Mode) {
		cur, seen := out[it]
		switch {
		case !seen, m == Bypass, m == Hold && cur == Normal:
			out[it] = m
		}
	}
	for _, g := range spec.Groups {
		m := Hold
		switch d := decisions[g.Name]; {
		case d.Force == ForceOn:
			m = Bypass
		case d.Force == ForceOff:
			m = Normal
		case d.Held || d.Mode == GroupUnknown:
		case d.Mode == GroupBypass:
			m = Bypass
		default:
			m = Normal
		}
		for _, it := range g.Global {
			vote(it, m)
		}
	}
	for _, l := range spec.Listeners {
		m := Hold
		switch {
		case memberForce[l.Name] == ForceOn:
			m = Bypass
		case memberForce[l.Name] == ForceOff:
			m = Normal
		case !settled:
		case states[l.Name] == liveness.Failed:
			m = Bypass
		default:
			m = Normal
		}
		for _, it := range l.Local {
			vote(it, m)
		}
	}
	return out, decisions
}

// Kind is what an Item changes.
type Kind int

const (
	// RemoveAddress removes Item.Addr from Item.Interface in bypass mode.
	RemoveAddress Kind = iota
	// LinkDown sets Item.Interface down in bypass mode.
	LinkDown
)

func (k Kind) String() string {
	if k == LinkDown {
		return "link-down"
	}
	return "remove-address"
}

// Item is one thing bypass mode changes.
type Item struct {
	Kind      Kind
	Interface string
	Addr      netip.Addr // RemoveAddress only
}

func (i Item) String() string {
	if i.Kind == LinkDown {
		return "down " + i.Interface
	}
	return fmt.Sprintf("remove %v from %s", i.Addr, i.Interface)
}

// Mode is the desired state of an Item.
type Mode int

const (
	// Hold leaves the item as it is (start-up before every listener has
	// reported: the state of the previous run stays).
	Hold Mode = iota
	// Normal restores what bypass changed.
	Normal
	// Bypass removes the address or sets the link down.
	Bypass
)

func (m Mode) String() string {
	switch m {
	case Normal:
		return "normal"
	case Bypass:
		return "bypass"
	}
	return "hold"
}
