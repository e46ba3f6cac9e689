package stamp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestErrorEstimateBits(t *testing.T) {
	tests := []struct {
		e    ErrorEstimate
		wire uint16
	}{
		{ErrorEstimate{}, 0x0000},
		{ErrorEstimate{Synced: true}, 0x8000},
		{ErrorEstimate{PTP: true}, 0x4000},
		{ErrorEstimate{Scale: 0x3f}, 0x3f00},
		{ErrorEstimate{Multiplier: 0xff}, 0x00ff},
		{ErrorEstimate{Synced: true, PTP: true, Scale: 0x15, Multiplier: 0x01}, 0xd501},
	}
	for _, tt := range tests {
		if got := tt.e.Uint16(); got != tt.wire {
			t.Errorf("%+v.Uint16() = %#04x, want %#04x", tt.e, got, tt.wire)
		}
		if got := ParseErrorEstimate(tt.wire); got != tt.e {
			t.Errorf("ParseErrorEstimate(%#04x) = %+v, want %+v", tt.wire, got, tt.e)
		}
	}
	// Multiplier 1, Scale 22: 2^-10 s ≈ 976.5625 µs.
	if got, want := (ErrorEstimate{Scale: 22, Multiplier: 1}).Error(), 976562*time.Nanosecond; got != want {
		t.Errorf("Error() = %v, want %v", got, want)
	}
	e := NewErrorEstimate(time.Millisecond, true)
	if d := e.Error(); d < time.Millisecond*99/100 || d > time.Millisecond*101/100 || !e.Synced {
		t.Errorf("NewErrorEstimate(1ms) = %+v (%v)", e, d)
	}
}

func TestTimestamps(t *testing.T) {
	// 2026-11-21T00:00:00.5Z: Unix 1795219200; NTP seconds = +2208988800.
	tm := time.Date(2026, 11, 21, 0, 0, 0, 500_000_000, time.UTC)
	ntp := NTPTimestamp(tm)
	if want := Timestamp(uint64(1795219200+2208988800)<<32 | 0x80000000); ntp != want {
		t.Fatalf("NTPTimestamp = %#x, want %#x", uint64(ntp), uint64(want))
	}
	if got, err := ntp.Time(false); err != nil || !got.Equal(tm) {
		t.Errorf("NTP round trip = %v, %v; want %v", got, err, tm)
	}
	ptp := PTPTimestamp(tm)
	if want := Timestamp(uint64(1795219200)<<32 | 500_000_000); ptp != want {
		t.Fatalf("PTPTimestamp = %#x, want %#x", uint64(ptp), uint64(want))
	}
	if got, err := ptp.Time(true); err != nil || !got.Equal(tm) {
		t.Errorf("PTP round trip = %v, %v", got, err)
	}
	if _, err := Timestamp(1_000_000_000).Time(true); !errors.Is(err, ErrMalformed) {
		t.Errorf("PTP ns=1e9: err = %v, want ErrMalformed", err)
	}
	// Nanosecond precision survives the NTP fraction (232 ps resolution).
	for _, ns := range []int{1, 999_999_999, 123_456_789} {
		tm := time.Unix(1795219200, int64(ns))
		if got, _ := NTPTimestamp(tm).Time(false); !got.Equal(tm) {
			t.Errorf("NTP round trip of %d ns = %v", ns, got.Nanosecond())
		}
	}
	// Era 1 (after 2036-02-07).
	tm = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, _ := NTPTimestamp(tm).Time(false); !got.Equal(tm) {
		t.Errorf("era 1 round trip = %v", got)
	}
}

func TestSenderPacketLayout(t *testing.T) {
	p := SenderPacket{
		Seq:           0x01020304,
		Timestamp:     0x1112131415161718,
		ErrorEstimate: ErrorEstimate{Synced: true, Scale: 0x16, Multiplier: 0x01},
	}
	want := unhex(t, `
		01020304
		11121314 15161718
		9601 0000
		00000000 00000000 00000000 00000000 00000000 00000000 00000000`)
	if len(want) != BaseLen {
		t.Fatalf("expected layout is %d bytes", len(want))
	}
	got := p.Append(nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("Append:\n got %x\nwant %x", got, want)
	}
	back, err := DecodeSender(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	// Padding: appended as zeros, counted on decode.
	p.Padding = 20
	got = p.Append([]byte{0xaa})
	if len(got) != 1+BaseLen+20 || got[0] != 0xaa || !bytes.Equal(got[1:1+BaseLen], want) {
		t.Fatalf("padded Append = %x", got)
	}
	back, _ = DecodeSender(got[1:])
	if back.Padding != 20 {
		t.Errorf("decoded padding = %d, want 20", back.Padding)
	}

	// MBZ is ignored on receipt (RFC 8762 §4.2.1).
	dirty := bytes.Clone(want)
	dirty[20] = 0xff
	if back, err := DecodeSender(dirty); err != nil || back.Seq != p.Seq {
		t.Errorf("non-zero MBZ: %+v, %v", back, err)
	}
}

func TestReflectorPacketLayout(t *testing.T) {
	p := ReflectorPacket{
		Seq:              0x0a0b0c0d,
		Timestamp:        0x2122232425262728,
		ErrorEstimate:    ErrorEstimate{Synced: true, Scale: 0x01, Multiplier: 0x02},
		ReceiveTimestamp: 0x3132333435363738,
		SenderSeq:        0x41424344,
		SenderTimestamp:  0x5152535455565758,
		SenderErrorEst:   ErrorEstimate{Scale: 0x3f, Multiplier: 0xff},
		SenderTTL:        64,
	}
	want := unhex(t, `
		0a0b0c0d
		21222324 25262728
		8102 0000
		31323334 35363738
		41424344
		51525354 55565758
		3fff 0000
		40 000000`)
	if len(want) != BaseLen {
		t.Fatalf("expected layout is %d bytes", len(want))
	}
	got := p.Append(nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("Append:\n got %x\nwant %x", got, want)
	}
	back, err := DecodeReflector(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	p.Padding = 3
	if got := p.Append(nil); len(got) != 47 || !bytes.Equal(got[:44], want) || !bytes.Equal(got[44:], []byte{0, 0, 0}) {
		t.Errorf("padded Append = %x", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := DecodeSender(make([]byte, 43)); !errors.Is(err, ErrShort) || !strings.Contains(err.Error(), "43 bytes") {
		t.Errorf("DecodeSender(43 bytes) err = %v", err)
	}
	if _, err := DecodeReflector(nil); !errors.Is(err, ErrShort) {
		t.Errorf("DecodeReflector(nil) err = %v", err)
	}
	// A PTP (Z=1) receive timestamp with nanoseconds ≥ 1e9.
	p := ReflectorPacket{ErrorEstimate: ErrorEstimate{PTP: true}, ReceiveTimestamp: 0xffffffff}
	if _, err := DecodeReflector(p.Append(nil)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "receive timestamp") {
		t.Errorf("bad PTP receive timestamp: err = %v", err)
	}
	s := SenderPacket{ErrorEstimate: ErrorEstimate{PTP: true}, Timestamp: 0x3b9aca00}
	if _, err := DecodeSender(s.Append(nil)); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad PTP sender timestamp: err = %v", err)
	}
}

func FuzzDecodeSender(f *testing.F) {
	p := SenderPacket{Seq: 7, Timestamp: NTPTimestamp(time.Unix(1795219200, 0)), Padding: 4}
	f.Add(p.Append(nil))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeSender(b)
		if err != nil {
			return
		}
		// Re-encoding gives the same fields and length (MBZ and padding
		// contents are not kept).
		q, err := DecodeSender(p.Append(nil))
		if err != nil || q != p || p.Len() != len(b) {
			t.Fatalf("re-decode %+v != %+v (%v)", q, p, err)
		}
	})
}

func FuzzDecodeReflector(f *testing.F) {
	p := ReflectorPacket{Seq: 1, SenderSeq: 2, SenderTTL: 63, Padding: 10}
	f.Add(p.Append(nil))
	f.Add(make([]byte, 44))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeReflector(b)
		if err != nil {
			return
		}
		q, err := DecodeReflector(p.Append(nil))
		if err != nil || q != p || p.Len() != len(b) {
			t.Fatalf("re-decode %+v != %+v (%v)", q, p, err)
		}
	})
}
