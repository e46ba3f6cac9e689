package ttlloop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Quoted is the start of an IP packet as quoted by an ICMP or ICMPv6 error
// message: the IP header and at least the first 8 bytes after it (RFC 792,
// RFC 4443 section 3.3).
type Quoted struct {
	Src, Dst netip.Addr
	// Proto is the IPv4 protocol, or for IPv6 the next header after any
	// extension headers (1 for ICMP, 58 for ICMPv6).
	Proto uint8
	// TTL is the TTL or hop limit in the quoted header: what it was when
	// the packet expired or was refused.
	TTL uint8
	// TClass is the IPv4 TOS byte or the IPv6 traffic class in the quoted
	// header: DSCP in the upper six bits, ECN in the lower two.
	TClass uint8
	// Length is the packet's length as its header claims (IPv4 total
	// length; IPv6 40 + payload length), not what was quoted.
	Length int
	// HeaderLen is the length of the IP header including options or
	// extension headers; Length-HeaderLen is the upper-layer length.
	HeaderLen int
	// Head is the first 8 bytes after the IP header(s); for an ICMP Echo
	// Request: type, code, checksum, identifier, sequence number.
	Head [8]byte
	// Rest is whatever else of the payload was quoted (it aliases the
	// input); Linux quotes up to 576 bytes of IPv4 and 1280 of IPv6.
	Rest []byte
}

// Errors from [ParseQuoted].
var (
	errShort     = errors.New("too short")
	errVersion   = errors.New("not IPv4 or IPv6")
	errFragment  = errors.New("quotes a non-first fragment, which has no upper-layer header")
	errExtHeader = errors.New("malformed IPv6 extension header")
)

// ParseQuoted parses the quoted packet of an ICMP or ICMPv6 error, that is
// the bytes after the error's own 8-byte header. It accepts IPv4 with
// options and IPv6 with hop-by-hop, routing, fragment, destination options
// and AH extension headers, and needs the IP header plus 8 bytes.
func ParseQuoted(b []byte) (Quoted, error) {
	if len(b) < 1 {
		return Quoted{}, fmt.Errorf("quoted packet: %w", errShort)
	}
	switch b[0] >> 4 {
	case 4:
		return parseQuoted4(b)
	case 6:
		return parseQuoted6(b)
	}
	return Quoted{}, fmt.Errorf("quoted packet: version %d: %w", b[0]>>4, errVersion)
}

func parseQuoted4(b []byte) (Quoted, error) {
	if len(b) < 20 {
		return Quoted{}, fmt.Errorf("quoted IPv4 header: %d bytes: %w", len(b), errShort)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return Quoted{}, fmt.Errorf("quoted IPv4 header length %d: %w", ihl, errShort)
	}
	if len(b) < ihl+8 {
		return Quoted{}, fmt.Errorf("quoted IPv4 packet: %d bytes, want header %d + 8: %w", len(b), ihl, errShort)
	}
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return Quoted{}, fmt.Errorf("quoted IPv4 packet: %w", errFragment)
	}
	q := Quoted{
		Src:       netip.AddrFrom4([4]byte(b[12:16])),
		Dst:       netip.AddrFrom4([4]byte(b[16:20])),
		Proto:     b[9],
		TTL:       b[8],
		TClass:    b[1],
		Length:    int(binary.BigEndian.Uint16(b[2:4])),
		HeaderLen: ihl,
		Rest:      b[ihl+8:],
	}
	copy(q.Head[:], b[ihl:ihl+8])
	return q, nil
}

// IPv6 extension headers that may sit between the fixed header and the
// upper-layer header (RFC 8200 section 4).
const (
	nhHopByHop = 0
	nhRouting  = 43
	nhFragment = 44
	nhAH       = 51
	nhDestOpts = 60
)

func parseQuoted6(b []byte) (Quoted, error) {
	if len(b) < 40 {
		return Quoted{}, fmt.Errorf("quoted IPv6 header: %d bytes: %w", len(b), errShort)
	}
	q := Quoted{
		Src:    netip.AddrFrom16([16]byte(b[8:24])),
		Dst:    netip.AddrFrom16([16]byte(b[24:40])),
		TTL:    b[7],
		TClass: b[0]<<4 | b[1]>>4,
		Length: 40 + int(binary.BigEndian.Uint16(b[4:6])),
	}
	next, off := b[6], 40
	// At most a handful of extension headers can precede the upper layer;
	// the bound keeps a hostile quote from making us walk far.
	for range 8 {
		if next != nhHopByHop && next != nhRouting && next != nhFragment && next != nhAH && next != nhDestOpts {
			break
		}
		if len(b) < off+8 {
			return Quoted{}, fmt.Errorf("quoted IPv6 extension header %d: %w", next, errShort)
		}
		var n int
		switch next {
		case nhFragment:
			if binary.BigEndian.Uint16(b[off+2:off+4])&0xfff8 != 0 {
				return Quoted{}, fmt.Errorf("quoted IPv6 packet: %w", errFragment)
			}
			n = 8
		case nhAH:
			n = (int(b[off+1]) + 2) * 4
		default:
			n = (int(b[off+1]) + 1) * 8
		}
		next = b[off]
		off += n
	}
	switch next {
	case nhHopByHop, nhRouting, nhFragment, nhAH, nhDestOpts:
		return Quoted{}, fmt.Errorf("quoted IPv6 packet: too many extension headers: %w", errExtHeader)
	}
	if len(b) < off+8 {
		return Quoted{}, fmt.Errorf("quoted IPv6 packet: %d bytes, want headers %d + 8: %w", len(b), off, errShort)
	}
	q.Proto = next
	q.HeaderLen = off
	copy(q.Head[:], b[off:off+8])
	q.Rest = b[off+8:]
	return q, nil
}

// ICMP and ICMPv6 message types this package sends or reads.
const (
	icmp4EchoRequest  = 8
	icmp4Unreachable  = 3
	icmp4TimeExceeded = 11
	icmp6EchoRequest  = 128
	icmp6Unreachable  = 1
	icmp6TimeExceeded = 3

	protoICMP   = 1
	protoICMPv6 = 58
)

// icmpError is an ICMP or ICMPv6 error message with its quoted packet.
type icmpError struct {
	Type, Code uint8
	Quoted     Quoted
}

// parseICMPError parses an ICMP (v6=false) or ICMPv6 message, starting at
// its type byte, that is a Time Exceeded or Destination Unreachable.
func parseICMPError(b []byte, v6 bool) (icmpError, error) {
	if len(b) < 8 {
		return icmpError{}, fmt.Errorf("icmp message: %d bytes: %w", len(b), errShort)
	}
	e := icmpError{Type: b[0], Code: b[1]}
	quoted := b[8:]
	// RFC 4884: a non-zero length field says how much of the rest is the
	// quoted packet (in 32-bit words for ICMP, 64-bit words for ICMPv6);
	// what follows is an extension structure, not the packet.
	if v6 {
		if e.Type != icmp6TimeExceeded && e.Type != icmp6Unreachable {
			return icmpError{}, fmt.Errorf("icmpv6 type %d is not an error we read", e.Type)
		}
		if l := int(b[4]) * 8; l > 0 && l < len(quoted) {
			quoted = quoted[:l]
		}
	} else {
		if e.Type != icmp4TimeExceeded && e.Type != icmp4Unreachable {
			return icmpError{}, fmt.Errorf("icmp type %d is not an error we read", e.Type)
		}
		if l := int(b[5]) * 4; l > 0 && l < len(quoted) {
			quoted = quoted[:l]
		}
	}
	q, err := ParseQuoted(quoted)
	if err != nil {
		return icmpError{}, err
	}
	if q.Dst.Is6() != v6 {
		return icmpError{}, fmt.Errorf("quoted packet family does not match the icmp version")
	}
	e.Quoted = q
	return e, nil
}
