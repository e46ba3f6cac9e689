// Package ttlloop measures the loss of one point-to-point link with a
// TTL-looped probe burst, the method of draft-turaga-lmap-special-loop-address
// ("Special Loop Address", March 2016).
//
// # How it works
//
// Two routers route a special "loop" address at each other. A probe sent to
// that address with an even TTL bounces across the link: the neighbour
// decrements the TTL and sends it back, this host decrements it and sends it
// out again, until the TTL runs out. With an even initial TTL t the packet
// arrives here with TTL 1 after exactly t crossings, so it is this host
// that sends the ICMP Time Exceeded (draft section 5), and that message never
// crosses the link under test. A returned Time Exceeded therefore proves that
// its probe crossed the link t times without loss; counting them against
// the probes sent measures loss under a load set by count, size and TTL
// (draft section 6 and 7). Nothing runs on the far router.
//
// With an odd TTL the neighbour generates the Time Exceeded and it has to
// cross the link once more to reach us, so a loss of the reply cannot be told
// from a loss of the probe; [Options.Validate] refuses odd TTLs unless
// [Options.AllowOddTTL] is set.
//
// # Probe format
//
// A probe is an ICMP (ICMPv6) Echo Request. Time Exceeded quotes the probe's
// IP header and only the first 8 bytes after it (RFC 792); for an Echo Request
// those are type, code, checksum, identifier and sequence number, so the quote
// alone names the run (a random identifier), the probe (sequence number from
// a random base) and carries a 16-bit checksum over a per-probe random nonce
// in the payload that an off-path sender cannot predict. With an even TTL
// the Time Exceeded comes from this host, which quotes the whole probe, so
// the quote must also carry the nonce itself: a forged quote of the bare 8
// bytes, with a guessed checksum, counts as foreign. A UDP probe would
// spend the quoted 8 bytes on ports, length and a checksum that the kernel
// computes; Echo Requests also need no open port on either router and are
// what a router's data plane forwards like any other packet.
//
// # Requirements on this host
//
// This host forwards the looped probes, so for the address family in use it
// needs forwarding enabled, for IPv4 accept_local=1 on the interface (the
// returning probe carries our own source address, which Linux otherwise
// drops as a martian), and a route for the loop address via the neighbour
// on the interface (in the table that [Options.Mark] selects, if any):
// without it IPv4 assumes the loop address is on the link and the probes
// die waiting for ARP. [Run] checks all of this first and says what to
// change. Reverse-path filtering, even strict, passes the returning probes
// as long as their source address belongs to the interface under test
// (checked in the lab with rp_filter 1 and 2). Both routers should not send
// ICMP redirects (send_redirects=0): each turns every probe back out of the
// interface it came in on.
// Linux rate-limits ICMP errors (net.ipv4.icmp_ratelimit, icmp_ratemask,
// icmp_msgs_per_sec and icmp_msgs_burst, net.ipv6.icmp.ratelimit); a burst
// larger than those limits loses Time Exceeded messages on this host, not
// on the link, so relax them for large bursts.
//
// # Planning, production traffic and pacing
//
// With [Options.Fill], Run sizes the burst for a share of the link
// following section 7 of the draft (internal/linkplan): it reads the
// interface's byte counters over [Options.LoadWindow] and leaves room for
// the busier direction's production traffic (section 3), skipping the
// test when production alone fills the share; it takes the link speed
// from the kernel (ethtool; a bond's or team's members summed) unless one
// is given; it measures the RTT with a few single probes; and it sends the
// N probes RTT/N apart, so that they circle the loop evenly spaced
// (section 9) rather than as one train. The report has the production
// rate used, the planned and achieved test rate and gap.
//
// # QoS marking
//
// [Options.DSCP] marks the probes (IP_TOS, IPV6_TCLASS; section 8). The
// DSCP in each Time Exceeded's quote shows whether the loop kept it.
//
// # Sequential tests
//
// [Options.Sequential] sends rounds and stops as soon as Wald's sequential
// probability ratio test ([linkplan.SPRT]) finds the loss clearly above or
// below [Options.MaxLoss], which on a healthy link takes a fraction of the
// probes a fixed-count test with the same error rates needs.
package ttlloop
