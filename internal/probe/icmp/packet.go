package icmp

import (
	"encoding/binary"
	"errors"
)

const (
	typeEchoRequest4 = 8
	typeEchoReply4   = 0
	typeEchoRequest6 = 128
	typeEchoReply6   = 129

	headerLen = 8
	// TokenLen is the size of the per-probe token carried in the payload.
	TokenLen = 16
)

// Token is the unguessable per-probe payload.
type Token [TokenLen]byte

// marshalEcho writes an echo request into b (which must hold headerLen +
// TokenLen + padding bytes) and returns its length. The checksum is filled
// for IPv4; for ICMPv6 the kernel computes it (RFC 3542 section 3.1).
func marshalEcho(b []byte, v6 bool, id, seq uint16, tok *Token, size int) int {
	n := headerLen + TokenLen
	if size > n {
		n = size
	}
	b = b[:n]
	if v6 {
		b[0] = typeEchoRequest6
	} else {
		b[0] = typeEchoRequest4
	}
	b[1] = 0
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[headerLen:], tok[:])
	for i := headerLen + TokenLen; i < n; i++ {
		b[i] = byte(i)
	}
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	return n
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// Reply is a parsed echo reply.
type Reply struct {
	ID, Seq uint16
	Token   Token
}

var (
	errShort    = errors.New("packet too short")
	errNotReply = errors.New("not an echo reply")
)

// parseReply parses an ICMP message (no IP header). It is the parser of bytes
// from the wire and has a fuzz target.
func parseReply(b []byte, v6 bool) (Reply, error) {
	if len(b) < headerLen {
		return Reply{}, errShort
	}
	want := byte(typeEchoReply4)
	if v6 {
		want = typeEchoReply6
	}
	if b[0] != want || b[1] != 0 {
		return Reply{}, errNotReply
	}
	if len(b) < headerLen+TokenLen {
		return Reply{}, errShort
	}
	r := Reply{ID: binary.BigEndian.Uint16(b[4:]), Seq: binary.BigEndian.Uint16(b[6:])}
	copy(r.Token[:], b[headerLen:])
	return r, nil
}

// stripIPv4 returns the ICMP message inside an IPv4 packet (raw IPv4 ICMP
// sockets deliver the IP header).
func stripIPv4(b []byte) ([]byte, error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, errShort
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		return nil, errShort
	}
	return b[ihl:], nil
}
