package main

import (
	"testing"
	"time"

	"github.com/reachd/reachd/bench/internal/daemonrun"
)

func TestTransitions(t *testing.T) {
	log := `{"time":"2026-12-05T01:28:31.974562138Z","level":"DEBUG","msg":"target state","service":"bench","path":"p0","target":"2001:db8:100::1","from":0,"to":1,"reason":"x"}
{"time":"2026-12-05T01:28:32.000000001Z","level":"INFO","msg":"path state","to":2}
not json at all
{"time":"2026-12-05T01:28:33.5Z","level":"DEBUG","msg":"target state","target":"2001:db8:100::1","from":"up","to":"down"}
{"time":"2026-12-05T01:28:34Z","level":"DEBUG","msg":"target state","target":"2001:db8:100::2","to":2}
`
	ts := daemonrun.Transitions(log)
	if len(ts) != 3 {
		t.Fatalf("%d transitions: %+v", len(ts), ts)
	}
	if ts[0].To != "up" || ts[1].To != "down" || ts[2].To != "down" || ts[2].Target != "2001:db8:100::2" {
		t.Errorf("%+v", ts)
	}
	if want := time.Date(2026, 12, 5, 1, 28, 31, 974562138, time.UTC); !ts[0].At.Equal(want) {
		t.Errorf("time %v, want %v (ns kept)", ts[0].At, want)
	}
	w := newWatch(nil)
	w.add(ts[:1])
	if count(w.states, "up") != 1 {
		t.Errorf("states %v after the first transition", w.states)
	}
	w.add(ts[1:])
	if count(w.states, "down") != 2 || count(w.states, "up") != 0 || len(w.ts) != 3 {
		t.Errorf("states %v, transitions %+v", w.states, w.ts)
	}
}

func TestQuantile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]float64{0: 1, 0.5: 5, 0.99: 10, 1: 10} {
		if got := quantile(s, q); got != want {
			t.Errorf("quantile(%v) = %v, want %v", q, got, want)
		}
	}
}
