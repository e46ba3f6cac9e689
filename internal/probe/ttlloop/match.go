package ttlloop

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"
)

// nonceLen is the per-probe random nonce at the start of each probe's
// payload. It makes the probe's checksum, which every quote carries,
// unpredictable to anyone who did not see the probe.
const nonceLen = 8

// probeState is what the run remembers of one probe.
type probeState struct {
	sent     time.Time // zero: not (successfully) sent
	nonce    [nonceLen]byte
	sum      uint32 // ones'-complement sum of the message with checksum 0
	returned bool
	rtt      time.Duration
}

// verdict is what [matcher.handle] made of one ICMP message.
type verdict int

const (
	vForeign     verdict = iota // not about a probe of this run
	vReturned                   // first Time Exceeded for a probe
	vDuplicate                  // another Time Exceeded for a returned probe
	vUnreachable                // Destination Unreachable quoting a probe
)

// matcher matches ICMP errors to the probes of one run. It is pure: the
// caller feeds it bytes and receive times, which is what the tests do with
// hand-built, reordered and foreign messages.
type matcher struct {
	v6      bool
	loop    netip.Addr
	id      uint16
	seqBase uint16
	size    int // IP packet size of a probe
	probes  []probeState

	// fullQuote is set when the Time Exceeded must come from this host
	// (an even TTL): Linux quotes as much of the probe as fits in 576
	// bytes (1,280 for IPv6; RFC 1812 §4.3.2.3, RFC 4443 §2.4), so a
	// genuine quote always carries the probe's nonce. One that stops after
	// the 8 bytes RFC 792 requires is then a forgery quoting a guessed
	// header: it is refused instead of leaving a 16-bit checksum as the
	// only secret an off-path sender has to guess.
	fullQuote bool

	dscp                                       uint8 // DSCP the probes are sent with
	returned, duplicates, foreign, unreachable int
	teFrom, unreachFrom                        map[netip.Addr]int
	// remarked counts returned probes whose quoted header carried another
	// DSCP than they were sent with (a router on the loop re-marked
	// them); remarkedTo is the last such DSCP.
	remarked   int
	remarkedTo uint8
}

func newMatcher(loop netip.Addr, id, seqBase uint16, size, count int) *matcher {
	return &matcher{
		v6:          loop.Is6(),
		loop:        loop,
		id:          id,
		seqBase:     seqBase,
		size:        size,
		probes:      make([]probeState, count),
		teFrom:      map[netip.Addr]int{},
		unreachFrom: map[netip.Addr]int{},
	}
}

// ipHeaderLen is the IP header length the probes are sent with.
func (m *matcher) ipHeaderLen() int {
	if m.v6 {
		return 40
	}
	return 20
}

// build writes probe i, an Echo Request of m.size bytes of IP packet, into
// buf (which must hold the ICMP part) and records its nonce and checksum
// sum. The caller fills the nonce with random bytes first.
func (m *matcher) build(buf []byte, i int, nonce [nonceLen]byte) []byte {
	msg := buf[:m.size-m.ipHeaderLen()]
	clear(msg)
	if m.v6 {
		msg[0] = icmp6EchoRequest
	} else {
		msg[0] = icmp4EchoRequest
	}
	binary.BigEndian.PutUint16(msg[4:], m.id)
	binary.BigEndian.PutUint16(msg[6:], m.seqBase+uint16(i))
	copy(msg[8:], nonce[:])
	s := onesSum(msg, 0)
	if !m.v6 {
		// ICMPv4 has no pseudo-header; over a raw ICMPv6 socket the kernel
		// computes the checksum itself.
		binary.BigEndian.PutUint16(msg[2:], ^fold(s))
	}
	p := &m.probes[i]
	p.nonce, p.sum = nonce, s
	return msg
}

// handle matches one ICMP message (starting at its type byte) from the
// given source, received at the given time.
func (m *matcher) handle(from netip.Addr, msg []byte, at time.Time) verdict {
	e, err := parseICMPError(msg, m.v6)
	if err != nil {
		m.foreign++
		return vForeign
	}
	i, ok := m.probeIndex(e.Quoted)
	if !ok {
		m.foreign++
		return vForeign
	}
	p := &m.probes[i]
	te, unreach := uint8(icmp4TimeExceeded), uint8(icmp4Unreachable)
	if m.v6 {
		te, unreach = icmp6TimeExceeded, icmp6Unreachable
	}
	switch {
	case e.Type == unreach:
		m.unreachable++
		m.unreachFrom[from]++
		return vUnreachable
	case e.Type != te || e.Code != 0:
		// Code 1 is "fragment reassembly time exceeded": not a loop.
		m.foreign++
		return vForeign
	}
	m.teFrom[from]++
	if p.returned {
		m.duplicates++
		return vDuplicate
	}
	p.returned = true
	p.rtt = max(at.Sub(p.sent), 0)
	m.returned++
	if d := e.Quoted.TClass >> 2; d != m.dscp {
		m.remarked++
		m.remarkedTo = d
	}
	return vReturned
}

// probeIndex says which sent probe of this run q quotes, if any: the
// destination must be the loop address, the protocol and type an Echo
// Request, identifier and sequence number ours, and the checksum the one
// the probe was sent with. Quoted payload beyond the 8 bytes, when there
// is some, must carry the probe's nonce.
func (m *matcher) probeIndex(q Quoted) (int, bool) {
	if q.Dst != m.loop {
		return 0, false
	}
	if m.v6 {
		if q.Proto != protoICMPv6 || q.Head[0] != icmp6EchoRequest {
			return 0, false
		}
	} else if q.Proto != protoICMP || q.Head[0] != icmp4EchoRequest {
		return 0, false
	}
	if q.Head[1] != 0 || binary.BigEndian.Uint16(q.Head[4:]) != m.id {
		return 0, false
	}
	i := int(binary.BigEndian.Uint16(q.Head[6:]) - m.seqBase)
	if i >= len(m.probes) || m.probes[i].sent.IsZero() {
		return 0, false
	}
	p := &m.probes[i]
	want := ^fold(p.sum)
	if m.v6 {
		want = ^fold(p.sum + pseudoSum6(q.Src, q.Dst, q.Length-q.HeaderLen))
	}
	if binary.BigEndian.Uint16(q.Head[2:]) != want {
		return 0, false
	}
	if m.fullQuote && len(q.Rest) < nonceLen {
		return 0, false
	}
	if n := min(len(q.Rest), nonceLen); n > 0 && !slices.Equal(q.Rest[:n], p.nonce[:n]) {
		return 0, false
	}
	return i, true
}

// onesSum adds b as big-endian 16-bit words to s (RFC 1071), without
// folding.
func onesSum(b []byte, s uint32) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold folds a 32-bit ones'-complement sum into 16 bits.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// pseudoSum6 is the sum of the IPv6 pseudo-header for ICMPv6 (RFC 8200
// section 8.1).
func pseudoSum6(src, dst netip.Addr, length int) uint32 {
	s16, d16 := src.As16(), dst.As16()
	s := onesSum(s16[:], 0)
	s = onesSum(d16[:], s)
	return s + uint32(length>>16) + uint32(length&0xffff) + protoICMPv6
}

func (v verdict) String() string {
	switch v {
	case vForeign:
		return "foreign"
	case vReturned:
		return "returned"
	case vDuplicate:
		return "duplicate"
	case vUnreachable:
		return "unreachable"
	}
	return "verdict(?)"
}
