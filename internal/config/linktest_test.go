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

const validLinktests = `
services:
  - name: internet
    address: [0.0.0.0/0]
    paths:
      - name: broadband
        vector-priority: 10
        probe-address: [203.0.113.8]
linktests:
  - name: wan0-loop
    interface: wan0
    loop-address: 169.254.255.1
    count: 200
    interval: 5m
    max-loss: 1%
    affects-path: internet/broadband
  - name: wan0-loop6
    interface: wan0
    loop-address: 2001:db8:ffff:ffff::1
    ttl: 11
    allow-odd-ttl: true
    max-loss: 0.5
    fill: 20%
    link-speed: 1G
  - name: wan0-ef
    interface: wan0
    loop-address: 169.254.255.1
    dscp: ef
    max-loss: 1%
    until: max-loss
    fill: 50%
    load-window: 2s
  - name: wan0-af41
    interface: wan0
    loop-address: 169.254.255.1
    dscp: 34
    max-loss: 2%
    until: max-loss
    confidence: 99%
    round: 50
    count: 1000
    fill: 10%
    load-window: 0
`

func TestLinktestsDecode(t *testing.T) {
	c, err := Parse("test.yaml", []byte(validLinktests))
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Loop              netip.Addr
		TTL, Count, Size  int
		Interval, Timeout time.Duration
		MaxLoss           float64
		MaxLossSet        bool
		Service, Path     string
		Fill, Speed       float64
		DSCP              int
		Sequential        bool
		Confidence        float64
		Round             int
		LoadWindow        time.Duration
	}
	var got []view
	for _, l := range c.Linktests {
		got = append(got, view{l.Loop, l.TTL, l.Count, l.Size, l.Interval.D, l.Timeout.D, l.MaxLoss.V, l.MaxLoss.Set(), l.AffectsService, l.AffectsPathNm, l.FillShare, l.LinkSpeedBps, l.DSCP.V, l.Sequential, l.Confidence.V, l.Round, l.LoadWindow.D})
	}
	want := []view{
		{netip.MustParseAddr("169.254.255.1"), 254, 200, 1500, 5 * time.Minute, 2 * time.Second, 1, true, "internet", "broadband", 0, 0, 0, false, 0, 0, 10 * time.Second},
		{netip.MustParseAddr("2001:db8:ffff:ffff::1"), 11, 100, 1500, DefaultLinktestInterval, DefaultLinktestTimeout, 0.5, true, "", "", 0.2, 1e9, 0, false, 0, 0, 10 * time.Second},
		// link-speed left to the kernel; production over 2s.
		{netip.MustParseAddr("169.254.255.1"), 254, 100, 1500, DefaultLinktestInterval, DefaultLinktestTimeout, 1, true, "", "", 0.5, 0, 46, true, 95, 0, 2 * time.Second},
		// load-window 0: production left out.
		{netip.MustParseAddr("169.254.255.1"), 254, 1000, 1500, DefaultLinktestInterval, DefaultLinktestTimeout, 2, true, "", "", 0.1, 0, 34, true, 99, 50, 0},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("decoded linktests (-want +got):\n%s", d)
	}
}

func TestInvalidLinktestFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid-linktest-odd-ttl.yaml", []string{
			":5: linktests[0].ttl: 255 is odd: the neighbour would send the Time Exceeded across the link under test, so a lost reply would count as a lost probe; use an even TTL such as 254, or set allow-odd-ttl: true",
		}},
		{"invalid-linktest-affects-path.yaml", []string{
			`:13: linktests[0].affects-path: service "internet" has no path "dsl"; use one of its paths: broadband`,
			`:18: linktests[1].affects-path: no service is named "intranet"; use SERVICE/PATH with one of: internet`,
			":22: linktests[2].affects-path: needs max-loss",
		}},
		{"invalid-linktest-loop-address.yaml", []string{
			`:4: linktests[0].loop-address: "169.254.255.300" is not an IP address`,
			":7: linktests[1].loop-address: 224.0.0.1 must be a unicast address",
		}},
		{"invalid-linktest-interval.yaml", []string{
			":5: linktests[0].interval: 3s is too short for timeout 2s",
			"raise interval to 4s or more",
			`:7: linktests[0].max-loss: "150%" is not a share in per cent`,
			":8: linktests[0].link-speed: is only used with fill",
		}},
		{"invalid-linktest-qos.yaml", []string{
			`:5: linktests[0].dscp: dscp "af44": want a name (ef, af11-af43, cs0-cs7, be) or a number 0-63`,
			":6: linktests[0].until: until: max-loss needs max-loss more than 0% and less than 100%",
			":12: linktests[1].confidence: 30% must be more than 50% and less than 100%",
			":14: linktests[1].load-window: 4m0s is more than half of interval 5m0s",
			`:18: linktests[2].until: "forever": the only value is max-loss`,
			":19: linktests[2].load-window: is only used with fill",
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
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error text lacks %q:\n%s", w, err)
				}
			}
			if len(es) != len(tt.want) && tt.file != "invalid-linktest-interval.yaml" {
				t.Errorf("%d errors, want %d:\n%s", len(es), len(tt.want), err)
			}
		})
	}
}
