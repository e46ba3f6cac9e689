package dashboard

import "net/netip"

func mustAddr() netip.Addr { return netip.MustParseAddr("203.0.113.8") }
