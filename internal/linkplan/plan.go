// Package linkplan is the arithmetic of a TTL-loop link test
// (draft-turaga-lmap-special-loop-address, section 7): how many probes fill a
// share of a link, how long they loop, and the units operators write (1G,
// 20%). It does no I/O, so the config, the CLI and the prober all use it.
package linkplan

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults of a link test, shared by the measuring package
// (internal/probe/ttlloop), the config and reachctl so that a scheduled test
// and `reachctl linktest` without flags send the same burst.
const (
	DefaultTTL     = 254 // the draft's example (section 5): even, and the largest amplification
	DefaultCount   = 100
	DefaultSize    = 1500
	DefaultTimeout = 2 * time.Second

	// MaxCount bounds one burst; with TTL 254 and 1500-byte probes it is
	// already 3.8 GB on the wire.
	MaxCount = 10000
)

// BurstPlan is the outcome of [Plan]: how many probes to send so that the
// looping burst fills a share of the link, and for how long it loops.
type BurstPlan struct {
	LinkSpeed  float64       // link speed in bits per second
	RTT        time.Duration // round-trip time of the link
	Size       int           // IP packet size of one probe in bytes
	TTL        int           // initial TTL (hop limit) of the probes
	BitsPerRTT float64       // LinkSpeed × RTT: what one direction carries in one RTT
	ProbeBits  int           // Size × 8
	FullLink   int           // probes that fill 100 % of the link
	Probes     int           // probes that fill the requested share (rounded down)
	Fill       float64       // requested share, 0 < Fill ≤ 1
	ActualFill float64       // share that Probes really fill
	Loop       time.Duration // TTL × RTT, how long the burst loops (draft section 7)
	// Gap is the pacing of the burst: RTT / Probes, so that the looping
	// probes follow each other evenly round the loop (draft section 9;
	// see [Gap]). 0 for fewer than 2 probes.
	Gap time.Duration
	// RateBps is the test load the probes put on each direction:
	// Probes × ProbeBits / RTT.
	RateBps float64
}

// Plan sizes a probe burst following section 7 of
// draft-turaga-lmap-special-loop-address.
//
// While a probe loops it is on the wire once per RTT in each direction: it
// leaves this router, is turned round by the neighbour and comes back one
// RTT later to be sent again. So N looping probes of S bytes put N·S·8 bits
// into every RTT of each direction, out of the LinkSpeed·RTT bits that the
// direction can carry in that time, and
//
//	fill = N·S·8 / (LinkSpeed·RTT)  ⇒  N = ⌊fill · LinkSpeed·RTT / (S·8)⌋.
//
// The draft's example: 1 Gb/s × 1 ms = 1,000,000 bits per RTT; a 1536-byte
// probe is 12,288 bits; 1e6 / 12288 = 81.4, so 81 probes fill the link, and
// 20 % of 81.4 = 16.3, so 16 probes fill a fifth of it. N is rounded down so
// that the burst never exceeds the requested share.
//
// The draft also says a probe "loops the same number of times as the
// original TTL" and, at 1 ms RTT and TTL 254, loops for 254 ms; Loop is
// TTL × RTT to match. Strictly a probe with TTL t crosses the link t times,
// which is t/2 round trips, so with a true round-trip RTT it loops for
// t·RTT/2 (127 ms in the example): Loop is an upper bound. A real run
// measures the looped time directly ([Report.RTTMedian]), and [LinkRTT]
// turns that back into the link's RTT.
//
// Plan returns an error for non-positive speed, RTT or size, a TTL outside
// 1..255 or a fill outside (0, 1]. Probes may be 0 when one probe is already
// more than the requested share; ActualFill then says so.
func Plan(linkSpeed float64, rtt time.Duration, size, ttl int, fill float64) (BurstPlan, error) {
	switch {
	case !(linkSpeed > 0) || math.IsInf(linkSpeed, 0):
		return BurstPlan{}, fmt.Errorf("link speed %v: must be a positive number of bits per second", linkSpeed)
	case rtt <= 0:
		return BurstPlan{}, fmt.Errorf("rtt %v: must be positive", rtt)
	case size <= 0:
		return BurstPlan{}, fmt.Errorf("probe size %d: must be positive", size)
	case ttl < 1 || ttl > 255:
		return BurstPlan{}, fmt.Errorf("ttl %d: must be 1..255", ttl)
	case !(fill > 0 && fill <= 1):
		return BurstPlan{}, fmt.Errorf("fill %v: must be more than 0 %% and at most 100 %%", fill*100)
	}
	// speed × rtt computed from integer nanoseconds keeps 1e9 × 1 ms exact.
	bits := linkSpeed * float64(rtt) / float64(time.Second)
	probeBits := size * 8
	p := BurstPlan{
		LinkSpeed:  linkSpeed,
		RTT:        rtt,
		Size:       size,
		TTL:        ttl,
		BitsPerRTT: bits,
		ProbeBits:  probeBits,
		FullLink:   floorTol(bits / float64(probeBits)),
		Probes:     floorTol(fill * bits / float64(probeBits)),
		Fill:       fill,
		Loop:       time.Duration(ttl) * rtt,
	}
	p.ActualFill = float64(p.Probes) * float64(probeBits) / bits
	p.Gap = Gap(rtt, p.Probes)
	p.RateBps = Rate(p.Probes, size, rtt)
	return p, nil
}

// floorTol rounds down, but treats values within a hair below an integer
// as that integer, so that a plan which fits exactly is not one short
// because of floating-point error.
func floorTol(x float64) int {
	if x > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(math.Floor(x + 1e-9))
}

// LinkRTT converts the measured time from sending a probe with the given
// TTL to its Time Exceeded (the looped RTT) into the link's round-trip time:
// the probe made ttl crossings, ttl/2 round trips.
func LinkRTT(looped time.Duration, ttl int) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return looped * 2 / time.Duration(ttl)
}

// ParseSpeed reads a link speed in bits per second: a decimal number with
// an optional SI multiplier k, M, G or T (either case, powers of 1000) and an
// optional "b", "bps", "b/s" or "bit/s": "1G", "100M", "10g", "2.5Gbps",
// "100000". Bytes ("1GB") are refused, to avoid an eightfold mistake.
func ParseSpeed(s string) (float64, error) {
	in := s
	s = strings.TrimSpace(s)
	for _, unit := range []string{"bit/s", "bps", "b/s", "b"} {
		if strings.HasSuffix(s, unit) {
			s = strings.TrimSuffix(s, unit)
			break
		}
	}
	if strings.HasSuffix(s, "B") || strings.HasSuffix(s, "Bps") {
		return 0, fmt.Errorf("link speed %q: give bits per second (1G = 1 Gb/s), not bytes", in)
	}
	mult := 1.0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1e3
		case 'm', 'M':
			mult = 1e6
		case 'g', 'G':
			mult = 1e9
		case 't', 'T':
			mult = 1e12
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("link speed %q: want a positive number of bits per second such as 1G, 100M or 10g", in)
	}
	return v * mult, nil
}

// ParsePercent reads a share such as "20%" (or "20", always read as per
// cent) and returns it as a fraction, 0.2. It must be more than 0 and at
// most 100 %.
func ParsePercent(s string) (float64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("percentage %q: want a number such as 20%%", s)
	}
	if !(v > 0 && v <= 100) {
		return 0, fmt.Errorf("percentage %q: must be more than 0%% and at most 100%%", s)
	}
	return v / 100, nil
}

// String says what the plan means, e.g. "16 probes of 1536 bytes fill
// 19.7% of 1 Gb/s at 1ms RTT (81 fill 100%), sent 62.5µs apart; at TTL 254
// they loop for 254ms".
func (p BurstPlan) String() string {
	return fmt.Sprintf("%d probes of %d bytes fill %.1f%% of %s at %v RTT (%d fill 100%%), sent %v apart; at TTL %d they loop for %v",
		p.Probes, p.Size, p.ActualFill*100, FormatSpeed(p.LinkSpeed), p.RTT, p.FullLink, p.Gap, p.TTL, p.Loop)
}

// FormatSpeed writes bits per second with an SI prefix: "1 Gb/s".
func FormatSpeed(bps float64) string {
	for _, u := range []struct {
		f float64
		p string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if bps >= u.f {
			return strconv.FormatFloat(bps/u.f, 'g', 4, 64) + " " + u.p + "b/s"
		}
	}
	return strconv.FormatFloat(bps, 'g', 4, 64) + " b/s"
}
