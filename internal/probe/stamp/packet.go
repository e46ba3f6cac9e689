// Package stamp implements the Simple Two-Way Active Measurement Protocol
// (STAMP, RFC 8762) in unauthenticated and authenticated mode: the test
// packet codecs, a stateful Session-Reflector and a Session-Sender that
// measures forward and reverse latency and loss.
package stamp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/reachd/reachd/internal/defaults"
)

// DefaultPort is the UDP port assigned to STAMP (RFC 8762 §4.1).
const DefaultPort = defaults.StampPort

// BaseLen is the length of both unauthenticated base test packets
// (RFC 8762 §4.2.1 and §4.3.1). Longer packets carry padding.
const BaseLen = 44

// ErrShort is wrapped by Decode errors for packets shorter than BaseLen.
var ErrShort = errors.New("stamp: packet shorter than 44 bytes")

// ErrMalformed is wrapped by Decode errors for packets with a field that
// cannot be interpreted (for example a PTP timestamp with nanoseconds ≥ 1e9).
var ErrMalformed = errors.New("stamp: malformed packet")

// ErrorEstimate is the 16-bit Error Estimate field (RFC 4656 §4.1.2, used
// by RFC 8762 §4.2.1):
//
//	 0                   1
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|S|Z|   Scale   |   Multiplier  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// S is set when the clock is synchronised to an external source, Z selects
// the timestamp format (0 NTP, 1 PTPv2 truncated), and the error is
// Multiplier × 2^(Scale−32) seconds.
type ErrorEstimate struct {
	Synced     bool
	PTP        bool
	Scale      uint8 // 6 bits
	Multiplier uint8
}

// Uint16 returns the wire form of e. Scale is truncated to its 6 bits.
func (e ErrorEstimate) Uint16() uint16 {
	v := uint16(e.Scale&0x3f)<<8 | uint16(e.Multiplier)
	if e.Synced {
		v |= 0x8000
	}
	if e.PTP {
		v |= 0x4000
	}
	return v
}

// ParseErrorEstimate decodes the wire form of an Error Estimate.
func ParseErrorEstimate(v uint16) ErrorEstimate {
	return ErrorEstimate{
		Synced:     v&0x8000 != 0,
		PTP:        v&0x4000 != 0,
		Scale:      uint8(v>>8) & 0x3f,
		Multiplier: uint8(v),
	}
}

// Error returns the estimated clock error. RFC 4656 forbids a zero
// Multiplier; such an estimate gives 0 and the caller may treat it as
// unknown.
func (e ErrorEstimate) Error() time.Duration {
	// Multiplier × 2^(Scale−32) s, computed in float to cover every Scale.
	s := float64(e.Multiplier) * pow2(int(e.Scale)-32)
	return time.Duration(s * float64(time.Second))
}

func pow2(n int) float64 {
	v := 1.0
	for ; n > 0; n-- {
		v *= 2
	}
	for ; n < 0; n++ {
		v /= 2
	}
	return v
}

// NewErrorEstimate returns an estimate for a clock error of about d,
// with the S bit set to synced, in NTP format.
func NewErrorEstimate(d time.Duration, synced bool) ErrorEstimate {
	// Find the smallest Scale with Multiplier ≤ 255.
	secs := d.Seconds()
	for scale := 0; scale < 64; scale++ {
		m := secs / pow2(scale-32)
		if m <= 255 {
			if m < 1 {
				m = 1
			}
			return ErrorEstimate{Synced: synced, Scale: uint8(scale), Multiplier: uint8(m + 0.5 - 1e-9)}
		}
	}
	return ErrorEstimate{Synced: synced, Scale: 63, Multiplier: 255}
}

// Timestamp is a 64-bit STAMP timestamp in its wire form. Its meaning
// depends on the Z bit of the Error Estimate sent with it: NTP (32-bit
// seconds since 1900 and 32-bit binary fraction, RFC 5905) or PTPv2
// truncated (32-bit seconds and 32-bit nanoseconds since 1970, RFC 8186).
type Timestamp uint64

// ntpEpochOffset is the number of seconds from 1900-01-01 to 1970-01-01.
const ntpEpochOffset = 2208988800

// NTPTimestamp converts t to the NTP format.
func NTPTimestamp(t time.Time) Timestamp {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	return Timestamp(secs<<32 | frac)
}

// PTPTimestamp converts t to the truncated PTPv2 format.
func PTPTimestamp(t time.Time) Timestamp {
	return Timestamp(uint64(uint32(t.Unix()))<<32 | uint64(t.Nanosecond()))
}

// Time interprets ts in the format selected by ptp. It fails only for a
// PTP timestamp whose nanosecond part is not below 1e9.
func (ts Timestamp) Time(ptp bool) (time.Time, error) {
	hi, lo := int64(ts>>32), uint64(uint32(ts))
	if ptp {
		if lo >= 1e9 {
			return time.Time{}, fmt.Errorf("%w: PTP timestamp nanoseconds %d ≥ 1e9", ErrMalformed, lo)
		}
		return time.Unix(hi, int64(lo)), nil
	}
	// Round the fraction to the nearest nanosecond.
	ns := (lo*1e9 + 1<<31) >> 32
	// NTP era 0 ends in 2036; stamps with the top bit clear are taken to be
	// in era 1 (RFC 5905 §6), which keeps 1968–2104 unambiguous.
	secs := hi - ntpEpochOffset
	if hi < 1<<31 {
		secs += 1 << 32
	}
	return time.Unix(secs, int64(ns)), nil
}

// SenderPacket is the Session-Sender test packet in unauthenticated mode
// (RFC 8762 §4.2.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |  0
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Timestamp                            |  4
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Error Estimate        |                               | 12
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                         MBZ (30 octets)                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ 44
//
// MBZ is zeroed on transmission and ignored on receipt.
type SenderPacket struct {
	Seq           uint32
	Timestamp     Timestamp
	ErrorEstimate ErrorEstimate
	// Padding is the number of bytes after the base packet. Append writes
	// that many zero bytes; Decode reports how many it found.
	Padding int
}

// Len returns the length of the encoded packet.
func (p *SenderPacket) Len() int { return BaseLen + max(p.Padding, 0) }

// Append appends the encoded packet to b.
func (p *SenderPacket) Append(b []byte) []byte {
	off := len(b)
	b = append(b, make([]byte, p.Len())...)
	w := b[off:]
	binary.BigEndian.PutUint32(w[0:], p.Seq)
	binary.BigEndian.PutUint64(w[4:], uint64(p.Timestamp))
	binary.BigEndian.PutUint16(w[12:], p.ErrorEstimate.Uint16())
	return b
}

// DecodeSender decodes a Session-Sender test packet. Bytes past BaseLen
// are padding.
func DecodeSender(b []byte) (SenderPacket, error) {
	if len(b) < BaseLen {
		return SenderPacket{}, fmt.Errorf("decoding session-sender packet of %d bytes: %w", len(b), ErrShort)
	}
	p := SenderPacket{
		Seq:           binary.BigEndian.Uint32(b[0:]),
		Timestamp:     Timestamp(binary.BigEndian.Uint64(b[4:])),
		ErrorEstimate: ParseErrorEstimate(binary.BigEndian.Uint16(b[12:])),
		Padding:       len(b) - BaseLen,
	}
	if _, err := p.Timestamp.Time(p.ErrorEstimate.PTP); err != nil {
		return SenderPacket{}, fmt.Errorf("decoding session-sender timestamp: %w", err)
	}
	return p, nil
}

// ReflectorPacket is the Session-Reflector test packet in unauthenticated
// mode (RFC 8762 §4.3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |  0
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Timestamp                            |  4
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Error Estimate        |           MBZ                 | 12
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Receive Timestamp                    | 16
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Session-Sender Sequence Number                | 24
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Session-Sender Timestamp                     | 28
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Session-Sender Error Estimate |           MBZ                 | 36
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Ses-Sender TTL |                   MBZ                         | 40
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ 44
//
// Timestamp (T3) and Receive Timestamp (T2) are both in the format of the
// reflector's Error Estimate; Session-Sender Timestamp (T1) is copied with
// the sender's Error Estimate.
type ReflectorPacket struct {
	Seq              uint32
	Timestamp        Timestamp // T3
	ErrorEstimate    ErrorEstimate
	ReceiveTimestamp Timestamp // T2
	SenderSeq        uint32
	SenderTimestamp  Timestamp // T1
	SenderErrorEst   ErrorEstimate
	SenderTTL        uint8
	// Padding is the number of bytes after the base packet; a reflector
	// sets it to the padding it received so that both directions carry
	// packets of equal size (RFC 8762 §4.3, RFC 6038 §3).
	Padding int
}

// Len returns the length of the encoded packet.
func (p *ReflectorPacket) Len() int { return BaseLen + max(p.Padding, 0) }

// Append appends the encoded packet to b.
func (p *ReflectorPacket) Append(b []byte) []byte {
	off := len(b)
	b = append(b, make([]byte, p.Len())...)
	w := b[off:]
	binary.BigEndian.PutUint32(w[0:], p.Seq)
	binary.BigEndian.PutUint64(w[4:], uint64(p.Timestamp))
	binary.BigEndian.PutUint16(w[12:], p.ErrorEstimate.Uint16())
	binary.BigEndian.PutUint64(w[16:], uint64(p.ReceiveTimestamp))
	binary.BigEndian.PutUint32(w[24:], p.SenderSeq)
	binary.BigEndian.PutUint64(w[28:], uint64(p.SenderTimestamp))
	binary.BigEndian.PutUint16(w[36:], p.SenderErrorEst.Uint16())
	w[40] = p.SenderTTL
	return b
}

// DecodeReflector decodes a Session-Reflector test packet and checks that
// its timestamps can be interpreted.
func DecodeReflector(b []byte) (ReflectorPacket, error) {
	if len(b) < BaseLen {
		return ReflectorPacket{}, fmt.Errorf("decoding session-reflector packet of %d bytes: %w", len(b), ErrShort)
	}
	p := ReflectorPacket{
		Seq:              binary.BigEndian.Uint32(b[0:]),
		Timestamp:        Timestamp(binary.BigEndian.Uint64(b[4:])),
		ErrorEstimate:    ParseErrorEstimate(binary.BigEndian.Uint16(b[12:])),
		ReceiveTimestamp: Timestamp(binary.BigEndian.Uint64(b[16:])),
		SenderSeq:        binary.BigEndian.Uint32(b[24:]),
		SenderTimestamp:  Timestamp(binary.BigEndian.Uint64(b[28:])),
		SenderErrorEst:   ParseErrorEstimate(binary.BigEndian.Uint16(b[36:])),
		SenderTTL:        b[40],
		Padding:          len(b) - BaseLen,
	}
	if err := p.checkTimestamps(); err != nil {
		return ReflectorPacket{}, fmt.Errorf("decoding session-reflector %w", err)
	}
	return p, nil
}

// checkTimestamps fails when one of p's timestamps cannot be interpreted
// in the format its Error Estimate selects; the error starts with the
// field's name.
func (p *ReflectorPacket) checkTimestamps() error {
	for _, c := range []struct {
		name string
		ts   Timestamp
		ptp  bool
	}{
		{"timestamp", p.Timestamp, p.ErrorEstimate.PTP},
		{"receive timestamp", p.ReceiveTimestamp, p.ErrorEstimate.PTP},
		{"session-sender timestamp", p.SenderTimestamp, p.SenderErrorEst.PTP},
	} {
		if _, err := c.ts.Time(c.ptp); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}
