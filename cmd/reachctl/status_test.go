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
