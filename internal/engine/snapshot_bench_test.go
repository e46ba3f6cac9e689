package engine

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
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

// bigEngine is an engine, not running, for bigConfig(paths, perPath).
func bigEngine(tb testing.TB, paths, perPath int) *Engine {
	tb.Helper()
	cfg, err := config.Parse("big.yaml", []byte(bigConfig(paths, perPath)))
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(Options{Config: cfg, Probers: map[string]probe.Prober{"icmp": &fakeProber{alive: map[netip.Addr]bool{}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// BenchmarkSnapshotTargets is how long one full snapshot holds the engine's
// goroutine (no probe is sent meanwhile) at 10,000 targets on 10 paths.
func BenchmarkSnapshotTargets(b *testing.B) {
	e := bigEngine(b, 10, 1000)
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			e.snapshot(true, Snapshot{})
		}
	})
	b.Run("reusing the last one", func(b *testing.B) {
		var prev Snapshot
		for b.Loop() {
			prev = e.snapshot(true, prev)
		}
	})
}

// A snapshot taken into an earlier one's slices is the snapshot taken
// afresh, and reuses them; slices too small for a path's targets are
// replaced.
func TestSnapshotReusing(t *testing.T) {
	e := bigEngine(t, 3, 40)
	fresh := e.snapshot(true, Snapshot{})
	small := e.snapshot(true, Snapshot{Services: []ServiceSnapshot{{Paths: []PathSnapshot{{Targets: make([]TargetSnapshot, 3)}}}}})
	prev := e.snapshot(true, Snapshot{})
	again := e.snapshot(true, prev)
	for _, got := range []Snapshot{small, again} {
		if !reflect.DeepEqual(got, fresh) {
			t.Fatalf("a snapshot into earlier slices differs from a fresh one:\n%+v\n%+v", got, fresh)
		}
	}
	for j := range prev.Services[0].Paths {
		if &again.Services[0].Paths[j].Targets[0] != &prev.Services[0].Paths[j].Targets[0] {
			t.Errorf("path %d: the earlier snapshot's targets were not reused", j)
		}
	}
}

// BenchmarkSnapshotPaths is the same for a snapshot without the targets
// (Paths: what /v1/status answers beyond 1,000 targets by default).
func BenchmarkSnapshotPaths(b *testing.B) {
	e := bigEngine(b, 10, 1000)
	for b.Loop() {
		e.snapshot(false, Snapshot{})
	}
}
