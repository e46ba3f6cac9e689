package engine

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/probe"
)

// bigConfig is one service with paths × perPath IPv6 targets.
func bigConfig(paths, perPath int) string {
	var b strings.Builder
	b.WriteString("services:\n  - name: big\n    address: [2001:db8:ffff::/48]\n    paths:\n")
	n := 0
	for p := range paths {
		fmt.Fprintf(&b, "      - name: p%d\n        vector-priority: %d\n        probe-interval: 1s\n        probe-address:\n", p, 10+p)
		for range perPath {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 14: byte(n >> 8), 15: byte(n)})
			fmt.Fprintf(&b, "          - \"%s\"\n", a)
			n++
		}
	}
	return b.String()
}

// BenchmarkSnapshotTargets is how long one full snapshot holds the engine's
// goroutine (no probe is sent meanwhile) at 10,000 targets on 10 paths.
func BenchmarkSnapshotTargets(b *testing.B) {
	cfg, err := config.Parse("bench.yaml", []byte(bigConfig(10, 1000)))
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(Options{Config: cfg, Probers: map[string]probe.Prober{"icmp": &fakeProber{alive: map[netip.Addr]bool{}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		e.snapshot(true)
	}
}
