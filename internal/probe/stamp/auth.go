package stamp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Authenticated mode (RFC 8762 §4.2.2, §4.3.2, §4.4): both test packets
// are 112 bytes, the fields spread over 16-byte blocks, and the last 16
// bytes are an HMAC-SHA-256, truncated to 128 bits, over every byte
// before it. Padding, if any, follows the HMAC and is not covered.
//
// Session-Sender packet in authenticated mode (offsets in bytes):
//
//	 0 Sequence Number (4)    4 MBZ (12)
//	16 Timestamp (8)         24 Error Estimate (2)   26 MBZ (70)
//	96 HMAC (16)
//
// Session-Reflector packet in authenticated mode:
//
//	 0 Sequence Number (4)                4 MBZ (12)
//	16 Timestamp (8)                     24 Error Estimate (2)  26 MBZ (6)
//	32 Receive Timestamp (8)             40 MBZ (8)
//	48 Session-Sender Sequence Number (4) 52 MBZ (12)
//	64 Session-Sender Timestamp (8)      72 Session-Sender Error Estimate (2)  74 MBZ (6)
//	80 Ses-Sender TTL (1)                81 MBZ (15)
//	96 HMAC (16)
//
// The key is shared out of band (RFC 8762 leaves key management out of
// scope); reachd reads it from a file. A session is either authenticated
// or not: the two modes are never mixed (see the errors below).
const (
	// AuthLen is the length of both authenticated base test packets.
	AuthLen = 112
	// HMACLen is the length of the truncated HMAC-SHA-256.
	HMACLen = 16
	hmacOff = AuthLen - HMACLen
	// MinKeyLen is the shortest key reachd accepts (128 bits).
	MinKeyLen = 16
)

var (
	// ErrShortAuth is wrapped by the authenticated decoders for packets
	// shorter than AuthLen: an unauthenticated peer's 44-byte packet, for
	// example.
	ErrShortAuth = errors.New("stamp: packet shorter than the 112 bytes of authenticated mode")
	// ErrUnauthenticated is wrapped when the HMAC field is all zero: what
	// an unauthenticated reflector sends back when it reflects an
	// authenticated packet (it pads its 44-byte answer with zeros to the
	// length it received).
	ErrUnauthenticated = errors.New("stamp: packet carries no HMAC (the peer is in unauthenticated mode)")
	// ErrBadHMAC is wrapped when the HMAC does not verify: another key,
	// or a forgery.
	ErrBadHMAC = errors.New("stamp: HMAC does not verify (another key, or forged)")
)

// sum returns the truncated HMAC-SHA-256 of the bytes before the HMAC
// field of an authenticated packet.
func sum(key, pkt []byte) [HMACLen]byte {
	h := hmac.New(sha256.New, key)
	h.Write(pkt[:hmacOff])
	var out [HMACLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

// verify checks b's HMAC in constant time. It tells an all-zero HMAC
// (unauthenticated peer) from a wrong one.
func verify(key, b []byte) error {
	if len(b) < AuthLen {
		return fmt.Errorf("%d bytes: %w", len(b), ErrShortAuth)
	}
	want := sum(key, b)
	got := b[hmacOff:AuthLen]
	if hmac.Equal(want[:], got) {
		return nil
	}
	var zero [HMACLen]byte
	if hmac.Equal(zero[:], got) {
		return ErrUnauthenticated
	}
	return ErrBadHMAC
}

// AppendAuth appends p encoded in authenticated mode, signed with key, to
// b. Padding follows the 112-byte packet.
func (p *SenderPacket) AppendAuth(b []byte, key []byte) []byte {
	return appendSigned(b, p.Padding, p.Seq, p.Timestamp, p.ErrorEstimate, key, nil)
}

// appendSigned appends an authenticated packet of either direction: the
// fields both share (sequence number at 0, timestamp at 16, error estimate
// at 24), fill's (the reflector's), the HMAC over the 96 bytes before it,
// then padding zero bytes.
func appendSigned(b []byte, padding int, seq uint32, ts Timestamp, est ErrorEstimate, key []byte, fill func(w []byte)) []byte {
	off := len(b)
	b = append(b, make([]byte, AuthLen+max(padding, 0))...)
	w := b[off:]
	binary.BigEndian.PutUint32(w[0:], seq)
	binary.BigEndian.PutUint64(w[16:], uint64(ts))
	binary.BigEndian.PutUint16(w[24:], est.Uint16())
	if fill != nil {
		fill(w)
	}
	mac := sum(key, w)
	copy(w[hmacOff:], mac[:])
	return b
}

// signedHeader reads the fields both directions share from a verified
// authenticated packet.
func signedHeader(b []byte) (seq uint32, ts Timestamp, est ErrorEstimate) {
	return binary.BigEndian.Uint32(b[0:]), Timestamp(binary.BigEndian.Uint64(b[16:])), ParseErrorEstimate(binary.BigEndian.Uint16(b[24:]))
}

// DecodeSenderAuth verifies and decodes a Session-Sender packet in
// authenticated mode. Padding counts the bytes after the 112.
func DecodeSenderAuth(b []byte, key []byte) (SenderPacket, error) {
	if err := verify(key, b); err != nil {
		return SenderPacket{}, fmt.Errorf("decoding authenticated session-sender packet: %w", err)
	}
	p := SenderPacket{Padding: len(b) - AuthLen}
	p.Seq, p.Timestamp, p.ErrorEstimate = signedHeader(b)
	if _, err := p.Timestamp.Time(p.ErrorEstimate.PTP); err != nil {
		return SenderPacket{}, fmt.Errorf("decoding authenticated session-sender timestamp: %w", err)
	}
	return p, nil
}

// AppendAuth appends p encoded in authenticated mode, signed with key, to
// b. Padding follows the 112-byte packet.
func (p *ReflectorPacket) AppendAuth(b []byte, key []byte) []byte {
	return appendSigned(b, p.Padding, p.Seq, p.Timestamp, p.ErrorEstimate, key, func(w []byte) {
		binary.BigEndian.PutUint64(w[32:], uint64(p.ReceiveTimestamp))
		binary.BigEndian.PutUint32(w[48:], p.SenderSeq)
		binary.BigEndian.PutUint64(w[64:], uint64(p.SenderTimestamp))
		binary.BigEndian.PutUint16(w[72:], p.SenderErrorEst.Uint16())
		w[80] = p.SenderTTL
	})
}

// DecodeReflectorAuth verifies and decodes a Session-Reflector packet in
// authenticated mode and checks that its timestamps can be interpreted.
func DecodeReflectorAuth(b []byte, key []byte) (ReflectorPacket, error) {
	if err := verify(key, b); err != nil {
		return ReflectorPacket{}, fmt.Errorf("decoding authenticated session-reflector packet: %w", err)
	}
	p := ReflectorPacket{
		ReceiveTimestamp: Timestamp(binary.BigEndian.Uint64(b[32:])),
		SenderSeq:        binary.BigEndian.Uint32(b[48:]),
		SenderTimestamp:  Timestamp(binary.BigEndian.Uint64(b[64:])),
		SenderErrorEst:   ParseErrorEstimate(binary.BigEndian.Uint16(b[72:])),
		SenderTTL:        b[80],
		Padding:          len(b) - AuthLen,
	}
	p.Seq, p.Timestamp, p.ErrorEstimate = signedHeader(b)
	if err := p.checkTimestamps(); err != nil {
		return ReflectorPacket{}, fmt.Errorf("decoding authenticated session-reflector %w", err)
	}
	return p, nil
}
