package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/policy"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	last := now.Add(-1500 * time.Millisecond)
	lte := "lte"
	st := apitype.Status{Services: []apitype.Service{
		{Name: "internet", CurrentPath: &lte, Decided: true, Paths: []apitype.Path{
			{Name: "broadband", VectorPriority: 10, State: "down", Override: "auto", Attempts: 40, Losses: 4, LastAttempt: &last, Reason: "4 of 4 attempts lost"},
			{Name: "lte", VectorPriority: 20, State: "up", Override: "auto", Attempts: 40, LastAttempt: &last, LastRTT: 1234567 * time.Nanosecond, Reason: "first answer"},
		}},
		{Name: "dns", Decided: false},
	}}
	var b bytes.Buffer
	printStatus(&b, st, now)
	// Column widths are tabwriter's business; compare the words.
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"service internet current path: lte",
		"broadband 10 down auto 40 4 - 1.5s ago 4 of 4 attempts lost",
		"* lte 20 up auto 40 0 1.235ms 1.5s ago first answer",
		"service dns current path: (undecided: waiting for every path to report)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestPrintStatusECMP(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s1 := "s1"
	n := func(i int) *int { return &i }
	st := apitype.Status{Services: []apitype.Service{
		{Name: "anycast", Selection: "ecmp", CurrentPath: &s1, Decided: true, UsablePaths: []string{"s1", "s3"}, Paths: []apitype.Path{
			{Name: "s1", Weight: 1, State: "up", Override: "auto", Usable: true, Pinned: n(20)},
			{Name: "s2", Weight: 2, State: "down", Override: "auto", Pinned: n(0), Reason: "3 of 3 attempts lost"},
			{Name: "s3", Weight: 1, State: "up", Override: "auto", Usable: true, Pinned: n(19)},
			{Name: "s4", Weight: 1, State: "up", Override: "auto", Drained: true, Pinned: n(7)},
			{Name: "bgp-a", Weight: 1, State: "up", Override: "auto", Dynamic: true, Usable: true},
		}},
	}}
	var b bytes.Buffer
	printStatus(&b, st, now)
	out := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"service anycast (ecmp) usable paths: s1, s3",
		"* s1 1 up usable 20 auto",
		"s2 2 down down 0 auto 0 0 - never 3 of 3 attempts lost",
		"s4 1 up drained 7 auto",
		"* bgp-a (dynamic) 1 up usable - auto",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// statusBackend is a daemon with one path probing two targets, behind
// the real API (its ?targets= handling is what reachctl's flag reaches).
type statusBackend struct{}

func (statusBackend) Status(context.Context) (apitype.Status, error) {
	return apitype.Status{Services: []apitype.Service{{Name: "internet", Paths: []apitype.Path{{
		Name: "lte", State: "up", Attempts: 2,
		Targets: []apitype.Target{{Address: "192.0.2.1"}, {Address: "192.0.2.2"}},
	}}}}}, nil
}
func (statusBackend) PathInfo(context.Context) (apitype.PathInfo, error) { return nil, nil }
func (statusBackend) SetOverride(context.Context, string, string, policy.Override) error {
	return nil
}
func (statusBackend) PingStatus(context.Context, string, string, string, string) (string, error) {
	return "", nil
}
func (statusBackend) Reload(context.Context) error { return nil }

// TestStatusTargetsFlag runs reachctl status --targets against the real
// API: each value reaches the daemon, and a bad one is the daemon's 400.
func TestStatusTargetsFlag(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "reachd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.New(statusBackend{})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		args    []string
		targets int // how many targets the path lists; -1: null
		omitted bool
	}{
		{nil, 2, false}, // auto: 2 targets are within the limit
		{[]string{"--targets", "auto"}, 2, false},
		{[]string{"--targets", "all"}, 2, false},
		{[]string{"--targets", "none"}, -1, true},
	} {
		code, out, errOut := runCtl(t, append([]string{"--socket", sock, "--json", "status"}, tc.args...)...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d, stderr %s", tc.args, code, errOut)
		}
		var st struct {
			Omitted  bool `json:"targets-omitted"`
			Services []struct {
				Paths []struct {
					TargetCount int                `json:"target-count"`
					Targets     *[]json.RawMessage `json:"targets"`
				} `json:"paths"`
			} `json:"services"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Services) != 1 || len(st.Services[0].Paths) != 1 {
			t.Fatalf("%v: %v\n%s", tc.args, err, out)
		}
		p := st.Services[0].Paths[0]
		got := -1
		if p.Targets != nil {
			got = len(*p.Targets)
		}
		if got != tc.targets || st.Omitted != tc.omitted || p.TargetCount != 2 {
			t.Errorf("%v: %d targets listed (want %d), targets-omitted %v (want %v), target-count %d (want 2)\n%s",
				tc.args, got, tc.targets, st.Omitted, tc.omitted, p.TargetCount, out)
		}
	}
	code, _, errOut := runCtl(t, "--socket", sock, "status", "--targets", "some")
	if code != ExitRejected || !strings.Contains(errOut, "use all, none or auto") {
		t.Errorf("--targets some: exit %d (want %d), stderr %q", code, ExitRejected, errOut)
	}
}
