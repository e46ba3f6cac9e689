package ttlloop

import (
	"encoding/binary"
	"net/netip"
)

// Test helpers that build what the kernel would put on the wire and what a
// router sends back, independently of the code under test where it matters
// (IP headers, ICMP error framing, the ICMPv6 checksum the kernel adds).

// ipHeader4 returns an IPv4 header for a payload of n bytes.
func ipHeader4(src, dst netip.Addr, proto, ttl uint8, n int, options int) []byte {
	ihl := 20 + options
	h := make([]byte, ihl)
	h[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(ihl+n))
	binary.BigEndian.PutUint16(h[6:], 0x4000) // DF
	h[8], h[9] = ttl, proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	for i := 20; i < ihl; i++ {
		h[i] = 1 // NOP options
	}
	return h
}

// ipHeader6 returns an IPv6 header for a payload of n bytes.
func ipHeader6(src, dst netip.Addr, next, hops uint8, n int) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(n))
	h[6], h[7] = next, hops
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return h
}

func testNonce(i int) [nonceLen]byte {
	var n [nonceLen]byte
	binary.BigEndian.PutUint64(n[:], 0x9e3779b97f4a7c15*uint64(i+1))
	return n
}

// wireProbe builds probe i of m as sent from src and returns the IP packet
// as it is when it expires (TTL 1). It marks the probe sent at the zero
// time plus i milliseconds.
func wireProbe(m *matcher, i int, src netip.Addr) []byte {
	msg := m.build(make([]byte, m.size), i, testNonce(i))
	m.probes[i].sent = t0.Add(ms(i))
	if m.v6 {
		s := onesSum(msg, pseudoSum6(src, m.loop, len(msg)))
		binary.BigEndian.PutUint16(msg[2:], ^fold(s))
		return append(ipHeader6(src, m.loop, protoICMPv6, 1, len(msg)), msg...)
	}
	return append(ipHeader4(src, m.loop, protoICMP, 1, len(msg), 0), msg...)
}

// icmpErr wraps the first quote bytes of pkt into an ICMP (v4) or ICMPv6
// error of the given type and code, as a router would send it.
func icmpErr(v6 bool, typ, code uint8, pkt []byte, quote int) []byte {
	quote = min(quote, len(pkt))
	b := make([]byte, 8, 8+quote)
	b[0], b[1] = typ, code
	b = append(b, pkt[:quote]...)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], ^fold(onesSum(b, 0)))
	}
	return b
}
