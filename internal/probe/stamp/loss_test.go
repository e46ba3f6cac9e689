package stamp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLossAccount(t *testing.T) {
	type rep struct {
		s, r   uint32
		inTime bool
	}
	tests := []struct {
		name string
		sent int
		reps []rep
		want Loss
	}{
		{"no loss", 3, []rep{{0, 0, true}, {1, 1, true}, {2, 2, true}}, Loss{Sent: 3, Received: 3}},
		// Packet 1 never reached the reflector: reply to 2 carries r=1.
		{"forward", 3, []rep{{0, 0, true}, {2, 1, true}}, Loss{Sent: 3, Received: 2, Forward: 1}},
		// Reply to 1 lost: reply to 2 carries r=2.
		{"reverse", 3, []rep{{0, 0, true}, {2, 2, true}}, Loss{Sent: 3, Received: 2, Reverse: 1}},
		{"first packets lost forward", 4, []rep{{3, 0, true}}, Loss{Sent: 4, Received: 1, Forward: 3}},
		{"late reply is reverse loss", 2, []rep{{0, 0, false}, {1, 1, true}}, Loss{Sent: 2, Received: 1, Reverse: 1, Late: 1}},
		{"both", 6, []rep{{0, 0, true}, {2, 1, true}, {5, 4, true}}, Loss{Sent: 6, Received: 3, Forward: 1, Reverse: 2}},
		// Reflector forgot us after r=1; the reply to 4 carries r=0.
		{"reflector restart", 5, []rep{{0, 0, true}, {2, 1, true}, {4, 0, true}}, Loss{Sent: 5, Received: 3, Forward: 1}},
		// Reordered replies do not make the counters shrink.
		{"reorder", 3, []rep{{0, 0, true}, {2, 2, true}, {1, 1, true}}, Loss{Sent: 3, Received: 3, Reverse: 1}},
		{"timeouts unattributed", 3, nil, Loss{Sent: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a lossAccount
			for i := range tt.sent {
				a.sent(uint32(i))
			}
			for _, r := range tt.reps {
				a.observe(r.s, r.r, r.inTime)
			}
			if diff := cmp.Diff(tt.want, a.loss); diff != "" {
				t.Errorf("loss (-want +got):\n%s", diff)
			}
		})
	}
}
