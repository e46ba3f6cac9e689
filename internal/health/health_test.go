package health

import "testing"

func TestRiseFall(t *testing.T) {
	type step struct {
		ok      bool
		want    State
		changed bool
	}
	tests := []struct {
		name       string
		rise, fall int
		steps      []step
	}{
		{"unknown until rise", 2, 3, []step{{true, Unknown, false}, {true, Up, true}, {true, Up, false}}},
		{"unknown until fall", 2, 2, []step{{false, Unknown, false}, {false, Down, true}}},
		{"one failure does not withdraw", 1, 3, []step{{true, Up, true}, {false, Up, false}, {true, Up, false}, {false, Up, false}, {false, Up, false}, {false, Down, true}}},
		{"flapping never rises", 2, 2, []step{{false, Unknown, false}, {false, Down, true}, {true, Down, false}, {false, Down, false}, {true, Down, false}, {true, Up, true}}},
		{"zero counts as one", 0, 0, []step{{true, Up, true}, {false, Down, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(tt.rise, tt.fall)
			for i, s := range tt.steps {
				if got := tr.Observe(s.ok, "refused"); got != s.changed || tr.State() != s.want {
					t.Fatalf("step %d: state %v changed %v, want %v %v", i, tr.State(), got, s.want, s.changed)
				}
			}
		})
	}
}

func TestReasonAndSet(t *testing.T) {
	tr := New(1, 2)
	tr.Observe(false, "connection refused")
	tr.Observe(false, "connection refused")
	if got, want := tr.Reason(), "2 of 2 checks failed: connection refused"; got != want {
		t.Fatalf("reason %q, want %q", got, want)
	}
	if !tr.Set(Up, "service internet has a path") || tr.State() != Up {
		t.Fatal("Set did not change to up")
	}
	if tr.Set(Up, "again") {
		t.Fatal("Set to the same state reported a change")
	}
}
