package dataplane

import (
	"hash/fnv"
	"net/netip"
)

// Defaults for automatic marks and tables. The marks carry "RD" in their
// upper half so that reachd's conntrack marks are recognisable; the tables
// and rule priorities sit well away from the kernel's own.
const (
	markBase     = 0x52440000
	tableBase    = 0x5244 // 21060
	rulePriority = 10000  // + index; before main (32766)
	// replyPriority + index is the priority of the rule that lets replies
	// arriving on the path's interface be routed by main; see
	// PathPlane.rules.
	replyPriority = 9000
	// Proto is the rtnetlink protocol reachd's routes carry, so that they
	// can be told apart from others (`ip route show proto 201`).
	Proto = 201
)

// PathPlane is the kernel side of one path.
//
// Mark goes on what leaves through the path (its probes by SO_MARK, the
// original direction of the forwarded connections pinned to it) and on what
// comes back through it (the reply direction of the same conntrack entries,
// when it arrives on the path's interface); see rules for how the two
// directions are then routed.
type PathPlane struct {
	Service, Path string
	Mark          uint32
	Table         int
	Priority      int
	// ReplyPriority is the priority of "fwmark Mark iif Interface lookup
	// main", ahead of Priority.
	ReplyPriority int
	Interface     string
	Gateway       netip.Addr
	FlushOnDown   bool
	// ECMP: the path is a next-hop of an ecmp service; Weight its share.
	ECMP   bool
	Weight int
	// Dynamic: added at run time (not in the config); see ecmp_linux.go.
	Dynamic bool
}

// Routed reports whether the path has what routes need: an interface and a
// gateway. Paths without them are probed but not routed.
func (p PathPlane) Routed() bool { return p.Interface != "" && p.Gateway.IsValid() }

type key struct{ service, path string }

// Plan assigns marks and tables to every path of cfg, in config order:
// the n-th path (from 1) gets mark 0x52440000+n and table 21060+n unless the
// path sets fwmark / table-id.
func Plan(cfg Config) map[key]PathPlane {
	out := map[key]PathPlane{}
	n := 0
	for _, s := range cfg.Services {
		for _, p := range s.Paths {
			n++
			pp := PathPlane{
				Service: s.Name, Path: p.Name,
				Mark: uint32(markBase + n), Table: tableBase + n, Priority: rulePriority + n, ReplyPriority: replyPriority + n,
				Interface: p.Interface, Gateway: p.Gateway, FlushOnDown: p.FlushOnDown,
				// A down next-hop of an ecmp service always loses its
				// own connections (and only those): its clients learn
				// at once and reconnect to a usable one.
				ECMP: s.ECMP, Weight: p.Weight,
			}
			if s.ECMP {
				pp.FlushOnDown = true
			}
			if p.Fwmark != 0 {
				pp.Mark = uint32(p.Fwmark)
			}
			if p.TableID != 0 {
				pp.Table = p.TableID
			}
			out[key{s.Name, p.Name}] = pp
		}
	}
	planECMP(cfg, out)
	return out
}

// Marks, tables and rule priorities of ecmp next-hops (see planECMP).
const (
	dynamicBase     = 0x8000 // marks 0x52448001.., tables 21060+0x8001..
	dynamicSlots    = 0x7fff
	dynamicPriority = rulePriority + 0x2000 // 18192, still before main (32766)
)

// planECMP gives the next-hops of ecmp services marks and tables derived
// from their names (as run-time next-hops get theirs) instead of their
// position: a reload that adds, removes or reorders next-hops must not
// renumber the others, whose pinned connections carry their marks.
// Explicit fwmark / table-id still win.
func planECMP(cfg Config, out map[key]PathPlane) {
	used := map[uint32]bool{}
	for _, pp := range out {
		if !pp.ECMP {
			used[pp.Mark] = true
		}
	}
	for _, s := range cfg.Services {
		if !s.ECMP {
			continue
		}
		for _, p := range s.Paths {
			k := key{s.Name, p.Name}
			pp := out[k]
			if p.Fwmark != 0 {
				used[pp.Mark] = true
				continue
			}
			slot := nameSlot(used, s.Name, p.Name)
			used[uint32(markBase+dynamicBase+slot)] = true
			pp.Mark = uint32(markBase + dynamicBase + slot)
			if p.TableID == 0 {
				pp.Table = tableBase + dynamicBase + slot
			}
			pp.Priority, pp.ReplyPriority = dynamicPriority, dynamicPriority-1
			out[k] = pp
		}
	}
}

// nameSlot is the slot (1..dynamicSlots) of service/name: a hash of the
// names, or the next free slot after it when taken.
func nameSlot(used map[uint32]bool, service, name string) int {
	h := fnv.New32a()
	h.Write([]byte(service + "/" + name))
	slot := int(h.Sum32()%dynamicSlots) + 1
	for i := 0; i < dynamicSlots && used[uint32(markBase+dynamicBase+slot)]; i++ {
		slot = slot%dynamicSlots + 1
	}
	return slot
}
