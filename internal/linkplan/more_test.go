package linkplan

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseDSCP(t *testing.T) {
	good := map[string]int{
		"ef": 46, "EF": 46, "af11": 10, "af12": 12, "af13": 14, "af21": 18, "af31": 26, "af41": 34, "af43": 38,
		"cs0": 0, "cs1": 8, "cs5": 40, "cs6": 48, "cs7": 56, "be": 0, "default": 0,
		"0": 0, "46": 46, "63": 63, " 10 ": 10, "0x2e": 46,
	}
	for in, want := range good {
		got, err := ParseDSCP(in)
		if err != nil || got != want {
			t.Errorf("ParseDSCP(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "64", "-1", "af44", "af51", "cs8", "ef1", "x"} {
		if got, err := ParseDSCP(in); err == nil {
			t.Errorf("ParseDSCP(%q) = %d, want an error", in, got)
		}
	}
	// Every name round-trips, numbers without a name stay numbers.
	for v := 0; v <= 63; v++ {
		n := DSCPName(v)
		back, err := ParseDSCP(n)
		if err != nil || back != v {
			t.Errorf("DSCPName(%d) = %q parses to %d, %v", v, n, back, err)
		}
	}
	for v, want := range map[int]string{46: "ef", 34: "af41", 10: "af11", 8: "cs1", 0: "cs0", 1: "1", 44: "44"} {
		if got := DSCPName(v); got != want {
			t.Errorf("DSCPName(%d) = %q, want %q", v, got, want)
		}
	}
	if TOS(46) != 0xb8 {
		t.Errorf("TOS(ef) = %#x, want 0xb8", TOS(46))
	}
}

func TestGapAndRate(t *testing.T) {
	// The draft's example: 16 probes at 1 ms RTT leave 62.5 µs apart and
	// put 16 × 12288 bits per ms on the link: 196.6 Mb/s of 1 Gb/s.
	p, err := Plan(1e9, time.Millisecond, 1536, 254, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if p.Gap != 62500*time.Nanosecond {
		t.Errorf("gap %v, want 62.5µs", p.Gap)
	}
	if math.Abs(p.RateBps-196.608e6) > 1 {
		t.Errorf("rate %v, want 196.608 Mb/s", p.RateBps)
	}
	if math.Abs(p.RateBps/p.LinkSpeed-p.ActualFill) > 1e-12 {
		t.Errorf("rate %v is not ActualFill %v of the link", p.RateBps, p.ActualFill)
	}
	for _, c := range []struct {
		rtt  time.Duration
		n    int
		want time.Duration
	}{{time.Millisecond, 1, 0}, {time.Millisecond, 0, 0}, {0, 10, 0}, {10 * time.Millisecond, 100, 100 * time.Microsecond}} {
		if got := Gap(c.rtt, c.n); got != c.want {
			t.Errorf("Gap(%v, %d) = %v, want %v", c.rtt, c.n, got, c.want)
		}
	}
}

func TestLoadAndBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := LoadBetween(Counters{At: t0, RxBytes: 100, TxBytes: 1e6}, Counters{At: t0.Add(10 * time.Second), RxBytes: 100 + 75e6, TxBytes: 1e6 + 12.5e6})
	if l.RxBps != 60e6 || l.TxBps != 10e6 || l.Busier() != 60e6 || l.Window != 10*time.Second {
		t.Errorf("load %+v, want rx 60 Mb/s, tx 10 Mb/s over 10s", l)
	}
	if l := LoadBetween(Counters{At: t0, RxBytes: 5}, Counters{At: t0.Add(time.Second), RxBytes: 1}); l.RxBps != 0 {
		t.Errorf("counter reset: %+v", l)
	}
	for _, c := range []struct {
		name              string
		speed, fill, prod float64
		share             float64
		v                 FillVerdict
		reason            string
	}{
		{"idle", 100e6, 0.5, 0, 0.5, FillAsRequested, ""},
		// The case: 60 Mb/s of production on 100 Mb/s leaves 50 % − 60 % < 0.
		{"60 of 100 at 50%", 100e6, 0.5, 60e6, 0, FillSkipped, "production traffic 60 Mb/s (60.0% of 100 Mb/s) is already at or above the requested fill 50.0%; test skipped"},
		{"30 of 100 at 50%", 100e6, 0.5, 30e6, 0.2, FillReduced, "production traffic 30 Mb/s (30.0% of 100 Mb/s) leaves 20.0% of the requested 50.0%; test reduced to 20.0%"},
		{"exactly full", 100e6, 0.5, 50e6, 0, FillSkipped, "at or above"},
		{"60 of 100 at 90%", 100e6, 0.9, 60e6, 0.3, FillReduced, "reduced to 30.0%"},
	} {
		t.Run(c.name, func(t *testing.T) {
			share, v, reason := Budget(c.speed, c.fill, c.prod)
			if math.Abs(share-c.share) > 1e-9 || v != c.v || !strings.Contains(reason, c.reason) {
				t.Errorf("Budget = %v, %v, %q; want %v, %v, %q", share, v, reason, c.share, c.v, c.reason)
			}
		})
	}
}

func TestSPRTNumbers(t *testing.T) {
	s, err := NewSPRT(0.01, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if s.P0 != 0.005 || s.P1 != 0.02 || math.Abs(s.Alpha-0.05) > 1e-12 {
		t.Errorf("hypotheses %+v", s)
	}
	// ln(0.05/0.95) / ln(0.98/0.995) = 193.8: a clean link passes after
	// 194 probes, where a fixed-size test with the same error rates
	// needs 533.
	if n := s.CleanN(); n != 194 {
		t.Errorf("CleanN %d, want 194", n)
	}
	if n := s.FixedN(); n < 520 || n > 540 {
		t.Errorf("FixedN %d, want about 533", n)
	}
	for i := 1; i <= 194; i++ {
		d := s.Observe(1, 0)
		if (i < 194) != (d == Undecided) || (i == 194) != (d == Below) {
			t.Fatalf("after %d clean probes: %v", i, d)
		}
	}
	if d := s.Observe(10, 10); d != Below || s.Sent != 194 {
		t.Errorf("a decided test moved: %v after %d", d, s.Sent)
	}
	// Three losses in a row are enough to fail: 3·ln 4 = 4.16 > ln 19.
	s, _ = NewSPRT(0.01, 0.95)
	if d := s.Observe(3, 3); d != Above {
		t.Errorf("3 of 3 lost: %v", d)
	}
	for _, bad := range [][2]float64{{0, 0.95}, {1, 0.95}, {0.01, 0.5}, {0.01, 1}} {
		if _, err := NewSPRT(bad[0], bad[1]); err == nil {
			t.Errorf("NewSPRT(%v, %v) accepted", bad[0], bad[1])
		}
	}
	if s, _ := NewSPRT(0.6, 0.9); s.P1 != 0.8 {
		t.Errorf("max-loss 60%%: P1 %v, want 0.8 (half-way to 1)", s.P1)
	}
}

// TestSPRTErrorRates simulates many links at P0 and P1 and checks that
// the test's error rates stay within its stated ones (Wald's bounds are
// conservative), and that a lossless link always passes after CleanN.
func TestSPRTErrorRates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const runs = 4000
	run := func(p float64) (Decision, int) {
		s, _ := NewSPRT(0.01, 0.95)
		for s.Sent < 100000 {
			lost := 0
			if rng.Float64() < p {
				lost = 1
			}
			if d := s.Observe(1, lost); d != Undecided {
				return d, s.Sent
			}
		}
		return Undecided, s.Sent
	}
	wrong, total := 0, 0
	for range runs {
		d, n := run(0.005)
		total += n
		if d != Below {
			wrong++
		}
	}
	if rate := float64(wrong) / runs; rate > 0.05 {
		t.Errorf("at loss 0.5%%: %.3f called above max-loss, want ≤ 0.05", rate)
	}
	t.Logf("loss 0.5%%: mean %d probes", total/runs)
	wrong, total = 0, 0
	for range runs {
		d, n := run(0.02)
		total += n
		if d != Above {
			wrong++
		}
	}
	if rate := float64(wrong) / runs; rate > 0.05 {
		t.Errorf("at loss 2%%: %.3f called below max-loss, want ≤ 0.05", rate)
	}
	t.Logf("loss 2%%: mean %d probes", total/runs)
	// 10 % loss against max-loss 1 %: decided above, and fast.
	total = 0
	for range runs {
		d, n := run(0.10)
		total += n
		if d != Above {
			t.Fatalf("10%% loss called %v after %d", d, n)
		}
	}
	t.Logf("loss 10%%: mean %d probes", total/runs)
	if d, n := run(0); d != Below || n != 194 {
		t.Errorf("clean link: %v after %d", d, n)
	}
}

// TestKernelSpeedRecorded reads link attributes recorded in the shape the
// daemon collects them (netlink kind and master, ethtool speed): this
// kernel has no bonding or team module, so aggregated links are tested on
// recorded data only.
func TestKernelSpeedRecorded(t *testing.T) {
	b, err := os.ReadFile("testdata/links-bond-lacp.json")
	if err != nil {
		t.Fatal(err)
	}
	var links []LinkAttrs
	if err := json.Unmarshal(b, &links); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		bps  float64
		how  string
	}{
		// Two 10G members up, the third down: 20 Gb/s.
		{"bond0", 20e9, "bond bond0: sum of members that are up (eno1 10000 Mb/s, eno2 10000 Mb/s, eno3 down)"},
		{"team0", 50e9, "team team0: sum"},
		{"wan0", 1e9, "wan0 reports 1000 Mb/s"},
		{"eno1", 10e9, "eno1 reports 10000 Mb/s"},
		{"tun0", 0, "no speed"},
		{"bond1", 0, "none reports a speed while up (eno5 down)"},
		{"nope", 0, "not found"},
	} {
		bps, how := KernelSpeed(c.name, links)
		if bps != c.bps || !strings.Contains(how, c.how) {
			t.Errorf("KernelSpeed(%s) = %v, %q; want %v, %q", c.name, bps, how, c.bps, c.how)
		}
	}
}

// FuzzParseDSCP: any input parses to 0-63 or fails, and a parsed value's
// name parses back to it.
func FuzzParseDSCP(f *testing.F) {
	for _, s := range []string{"ef", "AF41", "cs7", "63", "0x2e", "-1", "af44", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseDSCP(s)
		if err != nil {
			return
		}
		if v < 0 || v > 63 {
			t.Fatalf("ParseDSCP(%q) = %d", s, v)
		}
		if back, err := ParseDSCP(DSCPName(v)); err != nil || back != v {
			t.Fatalf("%q → %d → %q → %d, %v", s, v, DSCPName(v), back, err)
		}
	})
}
