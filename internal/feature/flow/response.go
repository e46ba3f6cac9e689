package flow

import (
	"math"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/probe/stamp"
)

// NoPingError is the seed's error text for a direction without a ping
// within the timeout.
const NoPingError = apitype.FlowNoPingError

// Result is one ping of a flow, periodic or on demand, as exporters see it.
type Result struct {
	FlowID   string
	At       time.Time // when the test packet was sent (T1)
	OnDemand bool
	// Success is true when the reply came back in time. STAMP measures
	// both directions with one round trip, so both succeed or neither.
	Success bool
	// Forward and Reverse are the one-way latencies when ClockSynced,
	// otherwise half the round trip each (RTT excludes the reflector's
	// dwell time). Raw keeps T1..T4 for those who want them.
	Forward, Reverse time.Duration
	RTT              time.Duration
	ClockSynced      bool
	// NewForwardLoss and NewReverseLoss count losses whose direction this
	// reply (or a late one since the last Result) revealed, NewLate the
	// late replies among the reverse losses (see stamp.Loss).
	NewForwardLoss, NewReverseLoss uint64
	NewLate                        uint64
	Err                            error
	Raw                            stamp.Result
}

func resultFrom(id string, r stamp.Result, onDemand bool) Result {
	out := Result{
		FlowID: id, At: r.T1, OnDemand: onDemand, Success: r.Received, RTT: r.RTT,
		ClockSynced: r.ClockSynced, NewForwardLoss: r.NewForwardLoss, NewReverseLoss: r.NewReverseLoss, NewLate: r.NewLate,
		Err: r.Err, Raw: r,
	}
	if r.Received {
		if r.ClockSynced {
			out.Forward, out.Reverse = r.Forward, r.Reverse
		} else {
			out.Forward, out.Reverse = r.RTT/2, r.RTT/2
		}
	}
	return out
}

// Response turns a Result into the seed's answer. Without a reply neither
// direction can be confirmed, so both carry NoPingError; a reply confirms
// both.
func (r Result) Response() apitype.FlowPingResponse {
	resp := apitype.FlowPingResponse{FlowID: r.FlowID}
	if !r.Success {
		resp.Forward = failed()
		resp.Reverse = failed()
		return resp
	}
	resp.Forward = apitype.FlowDirectionResult{PingSuccess: true, Latency: millis(r.Forward)}
	resp.Reverse = apitype.FlowDirectionResult{PingSuccess: true, Latency: millis(r.Reverse)}
	return resp
}

func failed() apitype.FlowDirectionResult {
	s := NoPingError
	return apitype.FlowDirectionResult{Error: &s}
}

// millis rounds d to whole milliseconds, never below zero (unsynchronised
// clocks can make a one-way value negative).
func millis(d time.Duration) int64 {
	return max(0, int64(math.Round(float64(d)/float64(time.Millisecond))))
}
