package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The draft's own example (section 7): 1 Gb/s, 1 ms RTT, 1536-byte probes:
// 81 probes fill the link, 16 fill 20 %, and at TTL 254 they loop 254 ms.
func TestLinktestPlanDraftExample(t *testing.T) {
	var out bytes.Buffer
	if err := runPlan(&out, planFlags{speed: "1G", rtt: "1ms", size: 1536, fill: "20%", ttl: 254}, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1000000 bits", "12288 bits", "probes that fill 100% 81", "probes that fill 20% 16", "254ms"} {
		if !strings.Contains(squash(out.String()), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runPlan(&out, planFlags{speed: "1G", rtt: "1ms", size: 1536, fill: "20%", ttl: 254}, true); err != nil {
		t.Fatal(err)
	}
	var p struct{ FullLink, Probes int }
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || p.FullLink != 81 || p.Probes != 16 {
		t.Errorf("--json: %+v, %v; want 81 and 16:\n%s", p, err, out.String())
	}
	if err := runPlan(&out, planFlags{speed: "1GB", rtt: "1ms", size: 1536, fill: "20%", ttl: 254}, false); err == nil || !strings.Contains(err.Error(), "--link-speed") {
		t.Errorf("1GB accepted or error not naming the flag: %v", err)
	}
}

func TestLinktestPlanViaCobra(t *testing.T) {
	var out bytes.Buffer
	cmd := rootCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"linktest", "plan", "--link-speed", "1G", "--rtt", "1ms", "--size", "1536", "--fill", "20%"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(squash(out.String()), "probes that fill 20% 16") {
		t.Errorf("output:\n%s", out.String())
	}
}

// The plan shows the pacing gap, what production traffic leaves of the
// fill, and a sequential test's probe counts.
func TestLinktestPlanGapProductionSequential(t *testing.T) {
	var out bytes.Buffer
	if err := runPlan(&out, planFlags{speed: "1G", rtt: "1ms", size: 1536, fill: "20%", ttl: 254, production: "60M", maxLoss: "1%", confidence: "95%"}, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"test reduced to 14.0%", "probes that fill 14% 11", "gap between probes 90.909µs (RTT / 11",
		"sequential, clean link 194 probes", "fixed-count equivalent 533 probes",
	} {
		if !strings.Contains(squash(out.String()), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runPlan(&out, planFlags{speed: "100M", rtt: "10ms", size: 1500, fill: "50%", ttl: 254, production: "60M", confidence: "95%"}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "at or above the requested fill 50.0%; test skipped") {
		t.Errorf("60M of 100M with fill 50%%:\n%s", out.String())
	}
	out.Reset()
	if err := runPlan(&out, planFlags{speed: "1G", rtt: "1ms", size: 1536, fill: "20%", ttl: 254}, true); err != nil {
		t.Fatal(err)
	}
	var p struct{ Gap time.Duration }
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || p.Gap != 62500*time.Nanosecond {
		t.Errorf("--json gap %v, %v; want 62.5µs:\n%s", p.Gap, err, out.String())
	}
}

// squash turns runs of spaces (tabwriter padding) into one.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }
