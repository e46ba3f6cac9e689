package linkplan

import "time"

// Gap is the inter-packet gap that spreads n looping probes evenly over
// one round trip of the link (draft section 9: "the link fill level is
// also a function of the inter-packet gap of the test and the RTT").
//
// A looping probe passes this end of the link once per link RTT. When
// probe i leaves at i·RTT/n, after the first RTT the n probes follow each
// other RTT/n apart, round after round, and each direction carries a
// steady n·S·8/RTT bits per second instead of one back-to-back train that
// overruns the link's buffers while the rest of the RTT stays idle. It
// returns 0 (back to back) for n < 2 or a non-positive RTT.
func Gap(rtt time.Duration, n int) time.Duration {
	if n < 2 || rtt <= 0 {
		return 0
	}
	return rtt / time.Duration(n)
}

// Rate is the load in bits per second that n looping probes of size bytes
// put on each direction of a link with the given round-trip time:
// n·size·8/RTT. 0 for a non-positive RTT.
func Rate(n, size int, rtt time.Duration) float64 {
	if rtt <= 0 {
		return 0
	}
	return float64(n) * float64(size) * 8 / rtt.Seconds()
}
