package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
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
