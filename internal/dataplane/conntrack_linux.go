package dataplane

import (
	"fmt"

	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// flushMark deletes the conntrack entries whose mark is exactly mark, and
// no others: the clients of a dead path reconnect at once on the new one.
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
