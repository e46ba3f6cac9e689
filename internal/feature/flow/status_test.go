package flow

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTracker(t *testing.T) {
	t0 := time.Unix(1531157435, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		at   float64
		ok   bool
		want Status // status after the step
		ev   bool   // a change is reported
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first success", []step{{1, true, StatusOperational, true}, {2, true, StatusOperational, false}}},
		{"never succeeds", []step{{1, false, StatusUnknown, false}, {9.9, false, StatusUnknown, false}, {10, false, StatusFailed, true}, {11, false, StatusFailed, false}}},
		{"fails after delay since last success", []step{
			{1, true, StatusOperational, true},
			{5, false, StatusOperational, false},
			{10.9, false, StatusOperational, false},
			{11, false, StatusFailed, true},
		}},
		{"recovers", []step{{10, false, StatusFailed, true}, {12, true, StatusOperational, true}, {13, false, StatusOperational, false}}},
		{"success resets the delay", []step{{1, true, StatusOperational, true}, {9, false, StatusOperational, false}, {10, true, StatusOperational, false}, {19, false, StatusOperational, false}, {20, false, StatusFailed, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker("f", 10*time.Second, t0)
			for i, s := range tt.steps {
				old := tr.status
				ev, changed := tr.observe(s.ok, at(s.at))
				if tr.status != s.want || changed != s.ev {
					t.Fatalf("step %d (%+v): status %v changed %v", i, s, tr.status, changed)
				}
				if changed {
					want := Event{FlowID: "f", Old: old, New: s.want, At: at(s.at), LastSuccess: tr.lastOK, Reason: ev.Reason}
					if diff := cmp.Diff(want, ev); diff != "" || ev.Reason == "" {
						t.Errorf("step %d event (-want +got):\n%s", i, diff)
					}
					if ev.Recovered() != (old == StatusFailed && s.want == StatusOperational) {
						t.Errorf("step %d Recovered() = %v", i, ev.Recovered())
					}
				}
			}
		})
	}
	if StatusFailed.String() != "failed" || Status(9).String() != "Status(9)" {
		t.Error("Status.String")
	}
}
