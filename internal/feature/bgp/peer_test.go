package bgp

import (
	"net/netip"
	"testing"
	"time"
)

// What gobgp is asked for per neighbor: BFD only when configured, with
// the interval in microseconds both ways (RFC 5880 units).
func TestPeerConfigBFD(t *testing.T) {
	n := Neighbor{Addr: netip.MustParseAddr("192.0.2.2"), PeerAS: 65000, HoldTime: 9 * time.Second}
	if p := peerConfig(Settings{}, n, false); p.Bfd != nil {
		t.Errorf("BFD without bfd configured: %+v", p.Bfd)
	}
	n.BFDInterval, n.BFDMultiplier = 100*time.Millisecond, 3
	p := peerConfig(Settings{}, n, false)
	if b := p.Bfd; b == nil || !b.Enabled || b.DesiredMinimumTxInterval != 100000 || b.RequiredMinimumReceive != 100000 || b.DetectionMultiplier != 3 || b.Port != 0 {
		t.Errorf("bfd %+v", b)
	}
}
