package linkplan

import (
	"fmt"
	"strings"
)

// LinkAttrs are the attributes of one interface that decide its speed: what
// netlink (kind, master) and ethtool (speed) report. SpeedMbps is the
// kernel's value in Mb/s, ≤ 0 when it reports none (SPEED_UNKNOWN, -1).
type LinkAttrs struct {
	Name        string `json:"name"`
	Index       int    `json:"index"`
	Kind        string `json:"kind,omitempty"` // "bond", "team", "veth", "" for a physical NIC
	MasterIndex int    `json:"master-index,omitempty"`
	SpeedMbps   int    `json:"speed-mbps"`
	OperUp      bool   `json:"oper-up"`
}

// aggregate reports whether links of this kind carry the sum of their
// members (draft section 3: "the aggregated bandwidth of the link should be
// considered instead of the individual links").
func aggregate(kind string) bool { return kind == "bond" || kind == "team" }

// KernelSpeed is the speed in bits per second that the kernel's link
// attributes give the named interface, and how it was found. For a bond or
// team it is the sum of the speeds of its members that are up (a member
// that is down carries nothing); otherwise the interface's own speed. It
// returns 0 and a reason when there is none (a veth reports 10 Gb/s, a
// tunnel or a virtio NIC often nothing).
func KernelSpeed(name string, links []LinkAttrs) (bps float64, how string) {
	var self *LinkAttrs
	for i := range links {
		if links[i].Name == name {
			self = &links[i]
		}
	}
	if self == nil {
		return 0, fmt.Sprintf("interface %s not found", name)
	}
	if !aggregate(self.Kind) {
		if self.SpeedMbps <= 0 {
			return 0, fmt.Sprintf("the kernel reports no speed for %s", name)
		}
		return float64(self.SpeedMbps) * 1e6, fmt.Sprintf("%s reports %d Mb/s", name, self.SpeedMbps)
	}
	var parts []string
	var sum int
	members := 0
	for _, l := range links {
		if l.MasterIndex != self.Index || l.Index == self.Index {
			continue
		}
		members++
		switch {
		case !l.OperUp:
			parts = append(parts, l.Name+" down")
		case l.SpeedMbps <= 0:
			parts = append(parts, l.Name+" no speed")
		default:
			sum += l.SpeedMbps
			parts = append(parts, fmt.Sprintf("%s %d Mb/s", l.Name, l.SpeedMbps))
		}
	}
	if sum == 0 {
		return 0, fmt.Sprintf("%s %s has %d members and none reports a speed while up (%s)", self.Kind, name, members, strings.Join(parts, ", "))
	}
	return float64(sum) * 1e6, fmt.Sprintf("%s %s: sum of members that are up (%s)", self.Kind, name, strings.Join(parts, ", "))
}
