package main

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/bench/internal/result"
)

func TestParsePing(t *testing.T) {
	out := []byte(`PING 2001:db8:100::1 (2001:db8:100::1) 56 data bytes
[1763704151.500000] 64 bytes from 2001:db8:100::1: icmp_seq=1 ttl=64 time=0.045 ms
[1763704152.500100] 64 bytes from 2001:db8:100::1: icmp_seq=2 ttl=64 time=1.25 ms

--- 2001:db8:100::1 ping statistics ---
`)
	got := parsePing(out)
	want := []result.Sample{
		{Target: "2001:db8:100::1", Sent: 1763704151.500000 - 45e-6, RTT: 45000},
		{Target: "2001:db8:100::1", Sent: 1763704152.500100 - 1.25e-3, RTT: 1250000},
	}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-6 })
	if d := cmp.Diff(want, got, approx); d != "" {
		t.Errorf("parsePing (-want +got):\n%s", d)
	}
}

func TestParseFpingC(t *testing.T) {
	out := []byte("2001:db8:100::1 : 0.045 - 0.050\n2001:db8:100::2 : 0.040 0.041 0.042\nfping: some warning\n")
	index := map[string]int{"2001:db8:100::1": 0, "2001:db8:100::2": 1}
	start := time.Unix(1000, 0)
	sent, lost, ss := parseFpingC(out, index, map[string]bool{"2001:db8:100::1": true}, start, 100*time.Millisecond, time.Second)
	if sent != 6 || lost != 1 {
		t.Errorf("sent %d lost %d, want 6 and 1", sent, lost)
	}
	want := []result.Sample{{Target: "2001:db8:100::1", Sent: 1000, RTT: 45000}, {Target: "2001:db8:100::1", Sent: 1002, RTT: 50000}}
	if d := cmp.Diff(want, ss); d != "" {
		t.Errorf("samples (-want +got):\n%s", d)
	}
}

func TestRTTDiffsPairsSameSecond(t *testing.T) {
	ping := []result.Sample{{Target: "a", Sent: 10.2, RTT: 50000}, {Target: "a", Sent: 11.2, RTT: 60000}, {Target: "b", Sent: 10.5, RTT: 1000}}
	tool := []result.Sample{
		{Target: "a", Sent: 10.9, RTT: 55000}, // pairs with 10.2: +5 µs
		{Target: "a", Sent: 10.95, RTT: 1},    // same second again: ignored
		{Target: "a", Sent: 12.1, RTT: 1},     // no ping that second
		{Target: "b", Sent: 10.0, RTT: 3000},  // +2 µs
	}
	if d := cmp.Diff([]float64{5, 2}, rttDiffs(tool, ping)); d != "" {
		t.Errorf("diffs (-want +got):\n%s", d)
	}
}
