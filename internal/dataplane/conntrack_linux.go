package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// flushMark deletes the conntrack entries whose mark is exactly mark, and
// no others: the clients of a dead path reconnect at once on the new one.
// conntrackKernel is the real conntracker.
type conntrackKernel struct{}

func (conntrackKernel) flushMark(mark uint32) error { return flushMark(mark) }

func (conntrackKernel) countMarks(local map[netip.Addr]bool) (map[uint32]int, error) {
	return countMarks(local)
}

func flushMark(mark uint32) error {
	c, err := conntrack.Dial(nil)
	if err != nil {
		return fmt.Errorf("conntrack: %w", err)
	}
	defer c.Close()
	for _, fam := range []netfilter.ProtoFamily{netfilter.ProtoIPv4, netfilter.ProtoIPv6} {
		if err := c.FlushFilter(conntrack.NewFilter().Family(fam).Mark(mark)); err != nil {
			return fmt.Errorf("conntrack: flushing mark %#x: %w", mark, err)
		}
	}
	return nil
}

// countMarks counts conntrack entries by mark (one dump of every family),
// leaving out those whose original source is in local.
func countMarks(local map[netip.Addr]bool) (map[uint32]int, error) {
	c, err := conntrack.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack: %w", err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack: dump: %w", err)
	}
	out := map[uint32]int{}
	for _, f := range flows {
		if f.Mark != 0 && !local[f.TupleOrig.IP.SourceAddress.Unmap()] {
			out[f.Mark]++
		}
	}
	return out, nil
}
