package ttlloop

import "testing"

// BenchmarkHandle measures matching one Time Exceeded (576-byte IPv4
// quote) against a run of 1,000 probes.
func BenchmarkHandle(b *testing.B) {
	m := newMatcher(loop4, 1, 2, 1500, 1000)
	msg := icmpErr(false, icmp4TimeExceeded, 0, wireProbe(m, 500, src4), 548)
	b.ReportAllocs()
	for b.Loop() {
		m.probes[500].returned = false
		m.handle(src4, msg, t0)
	}
}
