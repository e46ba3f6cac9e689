package ttlloop

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	src4  = netip.MustParseAddr("169.254.0.1")
	peer4 = netip.MustParseAddr("169.254.0.2")
	loop4 = netip.MustParseAddr("169.254.255.1")
	src6  = netip.MustParseAddr("2001:db8:1::1")
	peer6 = netip.MustParseAddr("2001:db8:1::2")
	loop6 = netip.MustParseAddr("2001:db8:ffff:ffff::1")
)

func TestParseQuoted(t *testing.T) {
	head := []byte{8, 0, 0xab, 0xcd, 0x12, 0x34, 0x00, 0x07}
	v4opts := append(ipHeader4(src4, loop4, protoICMP, 1, 1500-24, 4), head...)
	v4opts = append(v4opts, 'n', 'o', 'n', 'c', 'e')

	// IPv6 with a hop-by-hop header (8 bytes) and a first fragment header.
	ext := []byte{
		nhFragment, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop: next fragment, len 0, PadN 4
		protoICMPv6, 0, 0x00, 0x01, 0, 0, 0, 42, // fragment: offset 0, M=1
	}
	v6ext := append(ipHeader6(src6, loop6, nhHopByHop, 1, 1452), ext...)
	v6ext = append(v6ext, 128, 0, 1, 2, 3, 4, 5, 6)

	tests := []struct {
		name string
		in   []byte
		want Quoted
	}{
		{"ipv4 with options", v4opts, Quoted{Src: src4, Dst: loop4, Proto: protoICMP, TTL: 1, Length: 1500, HeaderLen: 24,
			Head: [8]byte(head), Rest: []byte("nonce")}},
		{"ipv4 8 bytes only", append(ipHeader4(src4, loop4, 17, 0, 8, 0), head...), Quoted{Src: src4, Dst: loop4, Proto: 17, TTL: 0, Length: 28, HeaderLen: 20,
			Head: [8]byte(head), Rest: []byte{}}},
		{"ipv6 extension headers", v6ext, Quoted{Src: src6, Dst: loop6, Proto: protoICMPv6, TTL: 1, Length: 1492, HeaderLen: 56,
			Head: [8]byte{128, 0, 1, 2, 3, 4, 5, 6}, Rest: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQuoted(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("ParseQuoted (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseQuotedErrors(t *testing.T) {
	hdr4 := ipHeader4(src4, loop4, protoICMP, 1, 8, 0)
	frag4 := append(ipHeader4(src4, loop4, protoICMP, 1, 8, 0), make([]byte, 8)...)
	frag4[7] = 1 // fragment offset 8 bytes
	frag6 := append(ipHeader6(src6, loop6, nhFragment, 1, 16), nhFragment, 0, 0, 8, 0, 0, 0, 1)
	frag6 = append(frag6, make([]byte, 8)...)
	loop := ipHeader6(src6, loop6, nhDestOpts, 1, 100)
	for range 9 {
		loop = append(loop, nhDestOpts, 0, 1, 4, 0, 0, 0, 0)
	}
	loop = append(loop, make([]byte, 8)...)
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errShort},
		{"version 5", []byte{0x50, 0, 0, 0}, errVersion},
		{"ipv4 header only", hdr4, errShort},
		{"ipv4 ihl 4", append([]byte{0x44}, make([]byte, 40)...), errShort},
		{"ipv4 later fragment", frag4, errFragment},
		{"ipv6 short", ipHeader6(src6, loop6, 58, 1, 0)[:39], errShort},
		{"ipv6 no payload", ipHeader6(src6, loop6, 58, 1, 0), errShort},
		{"ipv6 later fragment", frag6, errFragment},
		{"ipv6 endless extension headers", loop, errExtHeader},
	} {
		if _, err := ParseQuoted(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzParseQuoted: the parser of bytes from the wire must never panic, and
// what it returns must be consistent with its input.
func FuzzParseQuoted(f *testing.F) {
	m := newMatcher(loop4, 1, 2, 100, 1)
	f.Add(wireProbe(m, 0, src4))
	m6 := newMatcher(loop6, 1, 2, 100, 1)
	f.Add(wireProbe(m6, 0, src6))
	f.Add(append(ipHeader6(src6, loop6, nhHopByHop, 1, 16), nhFragment, 0, 0, 0, 0, 0, 0, 0, 58, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuoted(b)
		if err != nil {
			return
		}
		if !q.Src.IsValid() || !q.Dst.IsValid() || q.Src.Is4() != q.Dst.Is4() {
			t.Fatalf("bad addresses %v %v", q.Src, q.Dst)
		}
		if q.HeaderLen < 20 || q.HeaderLen+8+len(q.Rest) != len(b) {
			t.Fatalf("HeaderLen %d + 8 + rest %d != %d", q.HeaderLen, len(q.Rest), len(b))
		}
		if string(q.Head[:]) != string(b[q.HeaderLen:q.HeaderLen+8]) {
			t.Fatalf("Head %x is not the 8 bytes after the header", q.Head)
		}
		// The matcher must not panic on anything the parser accepts,
		// whatever it quotes.
		m := newMatcher(q.Dst, 0, 0, 100, 3)
		m.probes[0].sent = t0
		m.probeIndex(q)
		v6 := q.Dst.Is6()
		typ := uint8(icmp4TimeExceeded)
		if v6 {
			typ = icmp6TimeExceeded
		}
		m.handle(peer4, icmpErr(v6, typ, 0, b, len(b)), t0)
	})
}

// FuzzHandle feeds whole ICMP messages (RFC 4884 length field included) to
// a matcher of each family: never a panic, never a match for a probe that
// was not sent.
func FuzzHandle(f *testing.F) {
	m := newMatcher(loop4, 1, 2, 100, 1)
	f.Add(icmpErr(false, icmp4TimeExceeded, 0, wireProbe(m, 0, src4), 548))
	m6 := newMatcher(loop6, 1, 2, 100, 1)
	f.Add(icmpErr(true, icmp6TimeExceeded, 0, wireProbe(m6, 0, src6), 548))
	f.Add([]byte{11, 0, 0, 0, 0, 1, 0, 0, 0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, loop := range []netip.Addr{loop4, loop6} {
			m := newMatcher(loop, 1, 2, 100, 2)
			m.probes[0].sent = t0 // probe 1 is never sent
			m.handle(src4, b, t0)
			if m.probes[1].returned {
				t.Fatal("matched a probe that was never sent")
			}
		}
	})
}
