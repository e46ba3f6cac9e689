package events

import (
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

func TestRingFilterAndSubscribers(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f := New(4, func() time.Time { return t0 })
	slow := f.Subscribe(1)
	for i, k := range []string{apitype.EventPathState, apitype.EventDecision, apitype.EventReload, apitype.EventPathState, apitype.EventBypass, apitype.EventPathState} {
		f.Publish(apitype.Event{Kind: k, Service: "internet", Subject: []string{"broadband", "lte"}[i%2], Reason: "r"})
	}
	got := f.Recent(10, Filter{})
	if len(got) != 4 || got[0].Seq != 6 || got[3].Seq != 3 || !got[0].Time.Equal(t0) {
		t.Fatalf("recent: %+v", got)
	}
	if got := f.Recent(10, Filter{Kinds: "path-state, bypass"}); len(got) != 3 {
		t.Fatalf("kinds filter: %+v", got)
	}
	if got := f.Recent(10, Filter{Text: "LTE"}); len(got) != 2 {
		t.Fatalf("text filter: %+v", got)
	}
	if got := f.Recent(1, Filter{}); len(got) != 1 || got[0].Seq != 6 {
		t.Fatalf("n=1: %+v", got)
	}
	// The slow subscriber got the first event and lost the rest; the
	// publisher never waited.
	if e := <-slow.C; e.Seq != 1 || slow.lost != 5 {
		t.Fatalf("slow subscriber: first %d, lost %d", e.Seq, slow.lost)
	}
	f.Unsubscribe(slow)

	g := New(4, nil)
	g.Restore(f.All())
	g.Publish(apitype.Event{Kind: apitype.EventReload})
	if got := g.Recent(10, Filter{}); len(got) != 4 || got[0].Seq != 7 || got[3].Seq != 4 {
		t.Fatalf("restored: %+v", got)
	}
}
