package ttlloop

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(i int) time.Duration { return time.Duration(i) * time.Millisecond }

// TestMatcher feeds one run's matcher the Time Exceeded messages of its
// probes out of order, with short (8-byte) and long quotes, mixed with
// duplicates, foreign errors and forgeries, and checks every verdict and
// the report.
func TestMatcher(t *testing.T) {
	for _, fam := range []struct {
		name            string
		src, peer, loop netip.Addr
		te, unreach     uint8
	}{
		{"ipv4", src4, peer4, loop4, icmp4TimeExceeded, icmp4Unreachable},
		{"ipv6", src6, peer6, loop6, icmp6TimeExceeded, icmp6Unreachable},
	} {
		t.Run(fam.name, func(t *testing.T) {
			v6 := fam.loop.Is6()
			// A sequence base just below the wrap, so sequence numbers wrap
			// through 0 within the run.
			m := newMatcher(fam.loop, 0xbeef, 0xfffe, 1500, 6)
			var pkts [][]byte
			for i := range 6 {
				pkts = append(pkts, wireProbe(m, i, fam.src))
			}
			m.probes[5].sent = time.Time{} // probe 5 was never sent
			hl := 20
			if v6 {
				hl = 40
			}
			te := func(i, quote int) []byte { return icmpErr(v6, fam.te, 0, pkts[i], quote) }
			// RTT of probe i is 10+i ms.
			at := func(i int) time.Time { return t0.Add(ms(i) + ms(10+i)) }

			mutate := func(i int, f func(b []byte)) []byte {
				b := append([]byte(nil), pkts[i]...)
				f(b)
				return icmpErr(v6, fam.te, 0, b, hl+8)
			}
			var someoneElses []byte // a UDP datagram to the loop address
			if v6 {
				someoneElses = append(ipHeader6(fam.peer, fam.loop, 17, 1, 8), 0x30, 0x39, 0x82, 0x9a, 0, 8, 0, 0)
			} else {
				someoneElses = append(ipHeader4(fam.peer, fam.loop, 17, 1, 8, 0), 0x30, 0x39, 0x82, 0x9a, 0, 8, 0, 0)
			}
			other := netip.MustParseAddr("203.0.113.9")
			if v6 {
				other = netip.MustParseAddr("2001:db8::9")
			}

			steps := []struct {
				what string
				from netip.Addr
				msg  []byte
				at   time.Time
				want verdict
			}{
				{"probe 4 first", fam.src, te(4, hl+8), at(4), vReturned},
				{"probe 2, long quote", fam.src, te(2, 548), at(2), vReturned},
				{"someone else's packet", fam.peer, icmpErr(v6, fam.te, 0, someoneElses, 100), at(2), vForeign},
				{"probe 0, 8 bytes quoted", fam.src, te(0, hl+8), at(0), vReturned},
				{"forged checksum", fam.peer, mutate(3, func(b []byte) { b[hl+2] ^= 1 }), at(3), vForeign},
				{"other destination", fam.peer, mutate(3, func(b []byte) {
					o := other.AsSlice()
					copy(b[hl-len(o):hl], o)
				}), at(3), vForeign},
				{"other run's identifier", fam.peer, mutate(3, func(b []byte) { b[hl+4] ^= 0x80 }), at(3), vForeign},
				{"wrong nonce in a long quote", fam.peer, func() []byte {
					b := append([]byte(nil), pkts[3]...)
					b[hl+8] ^= 1
					return icmpErr(v6, fam.te, 0, b, hl+16)
				}(), at(3), vForeign},
				{"never sent", fam.peer, te(5, 548), at(5), vForeign},
				{"reassembly timeout, code 1", fam.peer, icmpErr(v6, fam.te, 1, pkts[3], 548), at(3), vForeign},
				{"garbage", fam.peer, []byte{fam.te, 0, 0}, at(3), vForeign},
				{"unreachable from the neighbour", fam.peer, icmpErr(v6, fam.unreach, 0, pkts[1], 548), at(1), vUnreachable},
				{"probe 3", fam.src, te(3, 548), at(3), vReturned},
				{"probe 2 again", fam.src, te(2, hl+8), at(2).Add(time.Second), vDuplicate},
				{"probe 1 last", fam.src, te(1, 548), at(1), vReturned},
			}
			for _, s := range steps {
				if got := m.handle(s.from, s.msg, s.at); got != s.want {
					t.Errorf("%s: verdict %v, want %v", s.what, got, s.want)
				}
			}

			var got Report
			m.summarise(&got, func(a netip.Addr) bool { return a == fam.src })
			want := Report{
				Sent: 5, Returned: 5,
				RTTMin: ms(10), RTTMedian: ms(12), RTTMax: ms(14),
				Responders: []Responder{
					{Addr: fam.src, Local: true, TimeExceeded: 6},
					{Addr: fam.peer, Unreachable: 1},
				},
				Unreachable: 1, Duplicates: 1, Foreign: 8,
			}
			if fam.src.Compare(fam.peer) > 0 {
				want.Responders[0], want.Responders[1] = want.Responders[1], want.Responders[0]
			}
			if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
				t.Errorf("report (-want +got):\n%s", d)
			}
			t.Logf("%v", got)
		})
	}
}

func TestMatcherLoss(t *testing.T) {
	m := newMatcher(loop4, 7, 0, 100, 5)
	var pkts [][]byte
	for i := range 5 {
		pkts = append(pkts, wireProbe(m, i, src4))
	}
	for _, i := range []int{3, 0, 4} {
		m.handle(src4, icmpErr(false, icmp4TimeExceeded, 0, pkts[i], 28), t0.Add(ms(i)+ms(1)))
	}
	var r Report
	m.summarise(&r, nil)
	if r.Sent != 5 || r.Returned != 3 || r.Lost != 2 || r.LossPercent != 40 {
		t.Errorf("sent %d returned %d lost %d loss %v%%; want 5 3 2 40%%", r.Sent, r.Returned, r.Lost, r.LossPercent)
	}
}

// TestBuildChecksum checks the IPv4 probe's checksum with an independent
// computation: a correct ICMP message sums to 0xffff.
func TestBuildChecksum(t *testing.T) {
	for _, size := range []int{36, 37, 100, 1500} {
		m := newMatcher(loop4, 0x1234, 0x5678, size, 1)
		msg := m.build(make([]byte, size), 0, testNonce(0))
		if len(msg) != size-20 {
			t.Errorf("size %d: message %d bytes, want %d", size, len(msg), size-20)
		}
		var s uint32
		for i := 0; i < len(msg); i += 2 {
			w := uint32(msg[i]) << 8
			if i+1 < len(msg) {
				w |= uint32(msg[i+1])
			}
			s += w
		}
		for s > 0xffff {
			s = s>>16 + s&0xffff
		}
		if s != 0xffff {
			t.Errorf("size %d: checksum does not verify (sum %#x)", size, s)
		}
	}
}

// TestRemarked: a Time Exceeded whose quote carries another DSCP than the
// probe was sent with counts the probe as returned and as re-marked.
func TestRemarked(t *testing.T) {
	for _, fam := range []struct {
		loop netip.Addr
		v6   bool
	}{{loop4, false}, {loop6, true}} {
		m := newMatcher(fam.loop, 0x1234, 0, 100, 2)
		m.dscp = 46
		src := netip.MustParseAddr("169.254.0.1")
		if fam.v6 {
			src = netip.MustParseAddr("2001:db8:1::1")
		}
		for i, tc := range []uint8{46 << 2, 10<<2 | 1} { // ef; af11 with ECN ECT(1)
			buf := make([]byte, 100)
			msg := m.build(buf, i, [nonceLen]byte{byte(i)})
			m.probes[i].sent = time.Now()
			var q []byte
			if fam.v6 {
				q = ipHeader6(src, fam.loop, protoICMPv6, 1, len(msg))
				q[0], q[1] = 0x60|tc>>4, tc<<4
				sum := ^fold(m.probes[i].sum + pseudoSum6(src, fam.loop, len(msg)))
				msg[2], msg[3] = byte(sum>>8), byte(sum)
			} else {
				q = ipHeader4(src, fam.loop, protoICMP, 1, len(msg), 0)
				q[1] = tc
			}
			te := append([]byte{icmp4TimeExceeded, 0, 0, 0, 0, 0, 0, 0}, append(q, msg...)...)
			if fam.v6 {
				te[0] = icmp6TimeExceeded
			}
			if v := m.handle(src, te, time.Now()); v != vReturned {
				t.Fatalf("%v probe %d: %v", fam.loop, i, v)
			}
		}
		if m.remarked != 1 || m.remarkedTo != 10 {
			t.Errorf("%v: remarked %d to %d, want 1 to af11 (10)", fam.loop, m.remarked, m.remarkedTo)
		}
	}
}

// TestFullQuoteRequired: with an even TTL the Time Exceeded comes from
// this host, which quotes the whole probe; a quote of only the 8 bytes
// RFC 792 requires (what an off-path forger sends, guessing the checksum)
// is refused even when identifier, sequence number and checksum are right,
// while the full quote is accepted.
func TestFullQuoteRequired(t *testing.T) {
	for _, fam := range []struct {
		name      string
		src, loop netip.Addr
		te        uint8
		hl        int
	}{
		{"ipv4", src4, loop4, icmp4TimeExceeded, 20},
		{"ipv6", src6, loop6, icmp6TimeExceeded, 40},
	} {
		t.Run(fam.name, func(t *testing.T) {
			v6 := fam.loop.Is6()
			m := newMatcher(fam.loop, 0x1234, 100, 200, 2)
			m.fullQuote = true
			p0, p1 := wireProbe(m, 0, fam.src), wireProbe(m, 1, fam.src)
			if v := m.handle(fam.src, icmpErr(v6, fam.te, 0, p0, fam.hl+8), t0.Add(ms(1))); v != vForeign {
				t.Errorf("8-byte quote of a probe with its right checksum: %v, want foreign", v)
			}
			if v := m.handle(fam.src, icmpErr(v6, fam.te, 0, p1, len(p1)), t0.Add(ms(1))); v != vReturned {
				t.Errorf("full quote: %v, want returned", v)
			}
			if m.returned != 1 || m.foreign != 1 {
				t.Errorf("returned %d foreign %d, want 1 and 1", m.returned, m.foreign)
			}
		})
	}
}
