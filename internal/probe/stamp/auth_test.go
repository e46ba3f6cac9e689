package stamp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

// mac128 is HMAC-SHA-256 truncated to 128 bits, computed here without the
// package's helper.
func mac128(key, b []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(nil)[:16]
}

// The authenticated layouts byte by byte (RFC 8762 Figures 4 and 6): every
// field at its offset, MBZ zero, and the HMAC over the 96 bytes before it.
func TestAuthLayouts(t *testing.T) {
	ts := NTPTimestamp(time.Unix(1795219200, 123456789))
	est := ErrorEstimate{Synced: true, Scale: 0x15, Multiplier: 1}

	want := make([]byte, 112)
	binary.BigEndian.PutUint32(want[0:], 0xa1b2c3d4)
	binary.BigEndian.PutUint64(want[16:], uint64(ts))
	binary.BigEndian.PutUint16(want[24:], 0x9501)
	copy(want[96:], mac128(testKey, want[:96]))
	s := SenderPacket{Seq: 0xa1b2c3d4, Timestamp: ts, ErrorEstimate: est}
	if got := s.AppendAuth(nil, testKey); !bytes.Equal(got, want) {
		t.Errorf("sender packet:\n got %x\nwant %x", got, want)
	}
	if got, err := DecodeSenderAuth(want, testKey); err != nil || got != s {
		t.Errorf("DecodeSenderAuth = %+v, %v; want %+v", got, err, s)
	}

	t2, t3 := NTPTimestamp(time.Unix(1795219200, 200000000)), NTPTimestamp(time.Unix(1795219200, 300000000))
	want = make([]byte, 112+8)
	binary.BigEndian.PutUint32(want[0:], 7)
	binary.BigEndian.PutUint64(want[16:], uint64(t3))
	binary.BigEndian.PutUint16(want[24:], 0x9501)
	binary.BigEndian.PutUint64(want[32:], uint64(t2))
	binary.BigEndian.PutUint32(want[48:], 0xa1b2c3d4)
	binary.BigEndian.PutUint64(want[64:], uint64(ts))
	binary.BigEndian.PutUint16(want[72:], 0x0001)
	want[80] = 61
	copy(want[96:], mac128(testKey, want[:96]))
	r := ReflectorPacket{Seq: 7, Timestamp: t3, ErrorEstimate: est, ReceiveTimestamp: t2,
		SenderSeq: 0xa1b2c3d4, SenderTimestamp: ts, SenderErrorEst: ErrorEstimate{Multiplier: 1}, SenderTTL: 61, Padding: 8}
	if got := r.AppendAuth(nil, testKey); !bytes.Equal(got, want) {
		t.Errorf("reflector packet:\n got %x\nwant %x", got, want)
	}
	if got, err := DecodeReflectorAuth(want, testKey); err != nil || got != r {
		t.Errorf("DecodeReflectorAuth = %+v, %v; want %+v", got, err, r)
	}
	// Padding after the HMAC is not covered: it may change.
	want[115] = 0xff
	if _, err := DecodeReflectorAuth(want, testKey); err != nil {
		t.Errorf("padding changed: %v", err)
	}
}

func TestAuthRefusals(t *testing.T) {
	s := SenderPacket{Seq: 3, Timestamp: NTPTimestamp(time.Unix(1795219200, 0))}
	good := s.AppendAuth(nil, testKey)
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x01; return b }
	unauth := s.Append(nil)
	padded := (&SenderPacket{Seq: 3, Timestamp: s.Timestamp, Padding: AuthLen - BaseLen}).Append(nil)
	tests := []struct {
		name string
		b    []byte
		key  []byte
		want error
	}{
		{"unauthenticated 44 bytes", unauth, testKey, ErrShortAuth},
		{"unauthenticated padded to 112", padded, testKey, ErrUnauthenticated},
		{"another key", good, otherKey, ErrBadHMAC},
		{"sequence number changed", flip(3), testKey, ErrBadHMAC},
		{"MBZ changed", flip(40), testKey, ErrBadHMAC},
		{"timestamp changed", flip(23), testKey, ErrBadHMAC},
		{"HMAC changed", flip(100), testKey, ErrBadHMAC},
		{"truncated", good[:111], testKey, ErrShortAuth},
	}
	for _, tt := range tests {
		if _, err := DecodeSenderAuth(tt.b, tt.key); !errors.Is(err, tt.want) {
			t.Errorf("%s: DecodeSenderAuth err = %v, want %v", tt.name, err, tt.want)
		}
		if _, err := DecodeReflectorAuth(tt.b, tt.key); !errors.Is(err, tt.want) {
			t.Errorf("%s: DecodeReflectorAuth err = %v, want %v", tt.name, err, tt.want)
		}
	}
	// A valid HMAC over a timestamp that cannot be interpreted is still
	// malformed.
	bad := SenderPacket{Seq: 1, Timestamp: Timestamp(0x00000001_ffffffff), ErrorEstimate: ErrorEstimate{PTP: true}}
	if _, err := DecodeSenderAuth(bad.AppendAuth(nil, testKey), testKey); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad PTP timestamp: err = %v", err)
	}
}

func TestAuthShortKeyRefused(t *testing.T) {
	if _, err := NewReflector(ReflectorOptions{AnyPort: true, Addr: netip.MustParseAddrPort("127.0.0.1:0"), Key: []byte("short")}); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("reflector with a 5-byte key: err = %v", err)
	}
	if _, err := NewSender(SenderOptions{Peer: netip.MustParseAddrPort("127.0.0.1:862"), Key: []byte("short")}); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("sender with a 5-byte key: err = %v", err)
	}
}

func TestAuthLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			r := startReflector(t, ReflectorOptions{Addr: netip.AddrPortFrom(netip.MustParseAddr(addr), 0), Key: testKey})
			s := startSender(t, SenderOptions{Peer: r.Addr(), Key: testKey, Padding: 20})
			for i := range 5 {
				res := s.Ping(context.Background(), 2*time.Second)
				if !res.Received || res.Err != nil {
					t.Fatalf("ping %d: %+v", i, res)
				}
				if res.Seq != uint32(i) || res.ReflectorSeq != uint32(i) || res.SenderTTL == 0 || res.RTT < 0 {
					t.Errorf("ping %d: %+v", i, res)
				}
			}
			if rj := s.Rejected(); rj != (Rejected{}) {
				t.Errorf("sender refused replies: %+v", rj)
			}
			// The reflector counts a reply after sending it.
			var st ReflectorStats
			clock.WaitUntil(2*time.Second, func() bool { st = r.Stats(); return st.Reflected >= 5 })
			if st.Reflected != 5 || st.Unauthenticated != 0 || st.BadHMAC != 0 || st.Malformed != 0 {
				t.Errorf("reflector stats %+v", st)
			}
		})
	}
}

// The two modes never mix: whichever side is authenticated refuses the
// other, counts it, and no measurement comes out of it.
func TestAuthModesDoNotMix(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	const n = 3
	pings := func(t *testing.T, s *Sender) {
		t.Helper()
		for i := range n {
			if res := s.Ping(context.Background(), 300*time.Millisecond); res.Received {
				t.Fatalf("ping %d got a measurement across modes: %+v", i, res)
			}
		}
	}
	t.Run("authenticated sender, unauthenticated reflector", func(t *testing.T) {
		r := startReflector(t, ReflectorOptions{Addr: lo})
		s := startSender(t, SenderOptions{Peer: r.Addr(), Key: testKey})
		pings(t, s)
		// The unauthenticated reflector cannot tell: it reflects, padded
		// with zeros to 112 bytes. The sender refuses every answer.
		// Each side counts on its own goroutine, which the pings' 300 ms do
		// not wait for: poll (bounded) until the last ping's packets counted.
		var st ReflectorStats
		var rj Rejected
		clock.WaitUntil(5*time.Second, func() bool {
			st, rj = r.Stats(), s.Rejected()
			return st.Reflected >= n && rj.Unauthenticated >= n
		})
		if st.Reflected != n {
			t.Errorf("reflector stats %+v, want %d reflected", st, n)
		}
		if rj.Unauthenticated != n || rj.BadHMAC+rj.Malformed+rj.Unknown+rj.Forged != 0 {
			t.Errorf("sender refused %+v, want %d unauthenticated", rj, n)
		}
		if l := s.Loss(); l.Received != 0 {
			t.Errorf("loss %+v counts a reply", l)
		}
	})
	for _, pad := range []int{0, AuthLen - BaseLen} {
		t.Run(fmt.Sprintf("unauthenticated sender, authenticated reflector, padding %d", pad), func(t *testing.T) {
			r := startReflector(t, ReflectorOptions{Addr: lo, Key: testKey})
			s := startSender(t, SenderOptions{Peer: r.Addr(), Padding: pad})
			pings(t, s)
			// The reflector counts on its own goroutine, which the pings'
			// 300 ms do not wait for: poll (bounded) for the last one.
			var st ReflectorStats
			clock.WaitUntil(5*time.Second, func() bool { st = r.Stats(); return st.Received >= n && st.Unauthenticated >= n })
			if st.Reflected != 0 || st.Unauthenticated != n || st.Received != n {
				t.Errorf("reflector stats %+v, want %d unauthenticated, none reflected", st, n)
			}
		})
	}
	t.Run("another key", func(t *testing.T) {
		r := startReflector(t, ReflectorOptions{Addr: lo, Key: testKey})
		s := startSender(t, SenderOptions{Peer: r.Addr(), Key: otherKey})
		pings(t, s)
		// The reflector counts on its own goroutine, which the pings' 300 ms
		// do not wait for: poll (bounded) for the last one.
		var st ReflectorStats
		clock.WaitUntil(5*time.Second, func() bool { st = r.Stats(); return st.BadHMAC >= n })
		if st.Reflected != 0 || st.BadHMAC != n {
			t.Errorf("reflector stats %+v, want %d bad HMAC, none reflected", st, n)
		}
	})
}

// FuzzDecodeAuth feeds the same bytes to both authenticated decoders: no
// panic, and what verifies re-encodes to the same packet.
func FuzzDecodeAuth(f *testing.F) {
	s := SenderPacket{Seq: 7, Timestamp: NTPTimestamp(time.Unix(1795219200, 0)), Padding: 4}
	f.Add(s.AppendAuth(nil, testKey))
	r := ReflectorPacket{Seq: 1, SenderSeq: 2, SenderTTL: 63, Padding: 10}
	f.Add(r.AppendAuth(nil, testKey))
	f.Add(s.Append(nil))
	f.Add(make([]byte, 112))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := DecodeSenderAuth(b, testKey); err == nil {
			q, err := DecodeSenderAuth(p.AppendAuth(nil, testKey), testKey)
			if err != nil || q != p || AuthLen+p.Padding != len(b) {
				t.Fatalf("sender re-decode %+v != %+v (%v)", q, p, err)
			}
		}
		if p, err := DecodeReflectorAuth(b, testKey); err == nil {
			q, err := DecodeReflectorAuth(p.AppendAuth(nil, testKey), testKey)
			if err != nil || q != p || AuthLen+p.Padding != len(b) {
				t.Fatalf("reflector re-decode %+v != %+v (%v)", q, p, err)
			}
		}
	})
}
