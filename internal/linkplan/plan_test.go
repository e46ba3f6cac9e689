package linkplan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPlanDraft checks Plan against draft-turaga-lmap-special-loop-address
// section 7: 1 Gb/s, 1 ms RTT, 1536-byte probes, TTL 254: 81 probes fill the
// link, 16 fill 20 %, and the probes loop for 254 ms.
func TestPlanDraft(t *testing.T) {
	tests := []struct {
		name      string
		speed     float64
		rtt       time.Duration
		size, ttl int
		fill      float64
		wantFull  int
		want      int
		wantLoop  time.Duration
	}{
		{"draft 100%", 1e9, time.Millisecond, 1536, 254, 1, 81, 81, 254 * time.Millisecond},
		{"draft 20%", 1e9, time.Millisecond, 1536, 254, 0.2, 81, 16, 254 * time.Millisecond},
		// 10 Gb/s carries ten times the bits per RTT.
		{"10G 20%", 10e9, time.Millisecond, 1536, 254, 0.2, 813, 162, 254 * time.Millisecond},
		// 5 ms RTT (the draft's section 5 example) holds five times as much.
		{"5ms", 1e9, 5 * time.Millisecond, 1536, 254, 1, 406, 406, 1270 * time.Millisecond},
		// Exactly 100 probes of 1250 bytes fit 1e6 bits: no floating-point
		// shortfall.
		{"exact", 1e9, time.Millisecond, 1250, 10, 1, 100, 100, 10 * time.Millisecond},
		// One probe is more than 0.1 % of a slow link.
		{"too small", 1e6, time.Millisecond, 1500, 2, 0.001, 0, 0, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Plan(tt.speed, tt.rtt, tt.size, tt.ttl, tt.fill)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{p.FullLink, p.Probes, p.Loop, p.ProbeBits}
			want := []any{tt.wantFull, tt.want, tt.wantLoop, tt.size * 8}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Plan(%v, %v, %d, %d, %v) [full, probes, loop, bits] (-want +got):\n%s", tt.speed, tt.rtt, tt.size, tt.ttl, tt.fill, d)
			}
			if p.ActualFill > tt.fill+1e-12 {
				t.Errorf("ActualFill %v exceeds the requested %v", p.ActualFill, tt.fill)
			}
		})
	}
}

func TestPlanRefusesNonsense(t *testing.T) {
	for _, c := range []struct {
		speed     float64
		rtt       time.Duration
		size, ttl int
		fill      float64
	}{
		{0, time.Millisecond, 1500, 254, 0.2},
		{1e9, 0, 1500, 254, 0.2},
		{1e9, time.Millisecond, 0, 254, 0.2},
		{1e9, time.Millisecond, 1500, 256, 0.2},
		{1e9, time.Millisecond, 1500, 254, 0},
		{1e9, time.Millisecond, 1500, 254, 1.5},
	} {
		if _, err := Plan(c.speed, c.rtt, c.size, c.ttl, c.fill); err == nil {
			t.Errorf("Plan(%+v): no error", c)
		}
	}
}

func TestLinkRTT(t *testing.T) {
	// TTL 254 crosses the link 254 times, 127 round trips.
	if got := LinkRTT(127*time.Millisecond, 254); got != time.Millisecond {
		t.Errorf("LinkRTT(127ms, 254) = %v, want 1ms", got)
	}
}

func TestParseSpeed(t *testing.T) {
	good := map[string]float64{
		"1G": 1e9, "100M": 100e6, "10g": 10e9, "2.5Gbps": 2.5e9, "100000": 1e5,
		"1k": 1e3, "40Gbit/s": 40e9, " 1G ": 1e9, "1Gb/s": 1e9, "1Gb": 1e9,
	}
	for in, want := range good {
		got, err := ParseSpeed(in)
		if err != nil || got != want {
			t.Errorf("ParseSpeed(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "0", "1GB", "1X", "fast", "NaN", "+Inf"} {
		if got, err := ParseSpeed(in); err == nil {
			t.Errorf("ParseSpeed(%q) = %v, want an error", in, got)
		}
	}
}

func TestParsePercent(t *testing.T) {
	good := map[string]float64{"20%": 0.2, "100%": 1, "0.5%": 0.005, "20": 0.2, " 20 % ": 0.2}
	for in, want := range good {
		got, err := ParsePercent(in)
		if err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "%", "0%", "-5%", "101%", "abc", "NaN%"} {
		if got, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) = %v, want an error", in, got)
		}
	}
}

func TestPlanString(t *testing.T) {
	p, err := Plan(1e9, time.Millisecond, 1536, 254, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	want := "16 probes of 1536 bytes fill 19.7% of 1 Gb/s at 1ms RTT (81 fill 100%), sent 62.5µs apart; at TTL 254 they loop for 254ms"
	if got := p.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
