package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidFile(t *testing.T) {
	c, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	inet := c.Services[0]
	bb, lte := inet.Paths[0], inet.Paths[1]
	got := []any{
		inet.HoldDown.D, bb.ProbeInterval.D, bb.NumberOfRetries, bb.RetryInterval.D, bb.AttemptTimeout(),
		lte.ProbeInterval.D, lte.NumberOfRetries, lte.RetryInterval.D, lte.ProbeType,
		c.Services[1].HoldDown.D, c.Services[1].Paths[0].Targets, bb.GatewayAddr,
	}
	want := []any{
		6 * time.Second, 10 * time.Second, 4, time.Second, 250 * time.Millisecond,
		DefaultProbeInterval, DefaultNumberOfRetries, 250 * time.Millisecond, "icmp",
		DefaultHoldDown, []netip.Addr{netip.MustParseAddr("203.0.113.53")}, netip.MustParseAddr("192.0.2.1"),
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("decoded config (-want +got):\n%s", d)
	}
	if len(inet.Prefixes) != 2 || inet.Prefixes[1] != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("prefixes = %v", inet.Prefixes)
	}
}

func TestInvalidFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string // substrings of each error line, in order
	}{
		{"invalid-duplicate-priority.yaml", []string{":9: services[0].paths[1].vector-priority: 10 is already used by path \"broadband\""}},
		{"invalid-no-probe-address.yaml", []string{":5: services[0].paths[0]: probe-address is required"}},
		{"invalid-long-name.yaml", []string{":5: services[0].paths[0].name: ", "must be at most 255"}},
		{"invalid-retry-interval.yaml", []string{":8: services[0].paths[0].retry-interval: 20ms cannot hold 5 attempts of at least 10ms each; raise retry-interval to 50ms"}},
		{"invalid-unknown-key.yaml", []string{
			":4: services[0].hold-dwn: unknown key \"hold-dwn\"; remove it or check its spelling",
			":8: services[0].paths[0].probe-adress: unknown key \"probe-adress\"",
		}},
		{"invalid-bad-prefix.yaml", []string{":3: services[0].address[0]: \"203.0.113.0/33\" is not an IP prefix"}},
		{"invalid-bad-duration.yaml", []string{":4: services[0].hold-down: \"soon\" is not a duration"}},
		{"invalid-metrics.yaml", []string{
			":3: metrics.per-target: \"sometimes\" is not a per-target mode; use auto, always or never",
			":4: metrics.per-target-limit: -5 is negative",
		}},
		{"invalid-world-writable-socket.yaml", []string{":3: api.socket-mode: 0666 lets every local user write"}},
		{"invalid-gateway-family.yaml", []string{
			":8: services[0].paths[0].gateway: 198.51.100.2 cannot route the service's ::/0",
			":10: services[0].paths[1]: interface and gateway go together",
		}},
		{"invalid-ecmp.yaml", []string{
			":4: services[0].selection: \"roundrobin\" is not a selection",
			":10: services[0].paths[0].weight: 300 must be between 1 and 256",
			":13: services[1].pin-idle-timeout: pin-idle-timeout is for selection: ecmp",
			":17: services[1].paths[0].weight: weight is for selection: ecmp",
		}},
		{"invalid-syntax.yaml", []string{"invalid-syntax.yaml:2: mapping value is not allowed"}},
		{"invalid-api-listen-no-credential.yaml", []string{":3: api.listen: the TCP API can change routes, so it needs a credential"}},
		{"invalid-api-public-write.yaml", []string{":6: api.public-routes[1]: \"POST /v1/reload\": only read-only routes (GET, HEAD) may be public"}},
		{"invalid-dashboard.yaml", []string{
			":4: dashboard.listen: \"dashboard.example\" is not an IP address",
			":5: dashboard.save-interval: 10ms is too short",
			":6: dashboard.events: 5 must be between 10 and 100000",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := Load(path)
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Load(%s) = %v, want config.Errors", path, err)
			}
			text := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("error text lacks %q:\n%s", w, text)
				}
			}
			for _, e := range es {
				if !strings.HasPrefix(e.Error(), path+":") {
					t.Errorf("error %q does not start with the file name", e)
				}
			}
		})
	}
}

func TestECMPFile(t *testing.T) {
	c, err := Load("testdata/ecmp-valid.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	s := c.Services[0]
	got := []any{s.ECMP(), s.PinIdleTimeout.D, s.Paths[0].Weight, s.Paths[1].Weight, s.Paths[1].Priority()}
	want := []any{true, 120 * time.Second, 2, 1, 0}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ecmp service (-want +got):\n%s", d)
	}
	h, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if hs := h.Services[0]; hs.Selection != SelectionHunt || hs.ECMP() || hs.PinIdleTimeout.D != DefaultPinIdleTimeout {
		t.Errorf("default selection %q ecmp=%v pin-idle-timeout %v, want hunt and the default", hs.Selection, hs.ECMP(), hs.PinIdleTimeout.D)
	}
}

func TestEveryInvalidFileIsTested(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	for _, f := range files {
		if _, err := Load(f); err == nil {
			t.Errorf("%s was accepted", f)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"10", 10 * time.Second, false},
		{"0.2", 200 * time.Millisecond, false},
		{"250ms", 250 * time.Millisecond, false},
		{"1m30s", 90 * time.Second, false},
		{"-1", 0, true},
		{"soon", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestDampeningDefaults(t *testing.T) {
	c, err := Parse("d.yaml", []byte(`
services:
  - name: s
    address: [203.0.113.8/32]
    paths:
      - name: p
        vector-priority: 1
        dampening: {}
      - name: q
        vector-priority: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Dampening{Penalty: 1000, Suppress: 2000, Reuse: 750, HalfLife: Secs(60), MaxSuppress: Secs(900)}
	if d := cmp.Diff(want, c.Services[0].Paths[0].Dampening, cmp.AllowUnexported(Duration{})); d != "" {
		t.Errorf("dampening: {} (-want +got):\n%s", d)
	}
	if c.Services[0].Paths[1].Dampening != nil {
		t.Error("a path without dampening: got one")
	}
}

func TestPerTargetSeries(t *testing.T) {
	limit := func(n int) *int { return &n }
	tests := []struct {
		m       Metrics
		targets int
		want    bool
	}{
		{Metrics{PerTarget: "auto"}, 1000, true},
		{Metrics{PerTarget: "auto"}, 1001, false},
		{Metrics{PerTarget: "auto", PerTargetLimit: limit(50000)}, 50000, true},
		{Metrics{PerTarget: "auto", PerTargetLimit: limit(0)}, 1, false},
		{Metrics{PerTarget: "always"}, 50000, true},
		{Metrics{PerTarget: "never"}, 1, false},
	}
	for _, tt := range tests {
		if got := tt.m.PerTargetSeries(tt.targets); got != tt.want {
			t.Errorf("%+v.PerTargetSeries(%d) = %v, want %v", tt.m, tt.targets, got, tt.want)
		}
	}
}
