package apitype

import (
	"net/netip"
	"time"
)

// The flow API (seed document 003): PUT /flows/{flow_id}/ping (also under
// /v1) and GET /v1/flows.

// DefaultFlowPingTimeout is the seed's default on-demand ping timeout, used
// when FlowPingRequest.Timeout is absent.
const DefaultFlowPingTimeout = 2 * time.Second

// MaxFlowPingTimeout bounds an on-demand ping's wait.
const MaxFlowPingTimeout = 60 * time.Second

// FlowNoPingError is the seed's error text for a direction without a ping
// within the timeout.
const FlowNoPingError = "No ping for reasonable time"

// FlowPingRequest is the optional body of PUT /flows/{flow_id}/ping:
// timeout in milliseconds, default 2000 (seed document).
type FlowPingRequest struct {
	Timeout *int64 `json:"timeout,omitempty"`
}

// FlowPingResponse is the seed's on-demand ping answer (PUT
// /flows/{flow_id}/ping); encoding/json produces exactly
//
//	{"flow_id":…,"forward":{"ping_success":…,"error":…,"latency":…},"reverse":{…},"error":null}
type FlowPingResponse struct {
	FlowID  string              `json:"flow_id"`
	Forward FlowDirectionResult `json:"forward"`
	Reverse FlowDirectionResult `json:"reverse"`
	Error   *string             `json:"error"`
}

// FlowDirectionResult is one direction of a FlowPingResponse; Latency is in
// whole milliseconds and 0 when the ping failed.
type FlowDirectionResult struct {
	PingSuccess bool    `json:"ping_success"`
	Error       *string `json:"error"`
	Latency     int64   `json:"latency"`
}

// FlowState is one flow in GET /v1/flows.
type FlowState struct {
	ID   string         `json:"id"`
	Peer netip.AddrPort `json:"peer"`
	// Status is unknown, operational or failed.
	Status      string    `json:"status"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Loss        FlowLoss  `json:"loss"`
}

// FlowLoss counts a flow's lost packets by direction (the field names are
// the JSON keys, as they always were).
type FlowLoss struct {
	Sent     uint64 // test packets sent
	Received uint64 // replies received in time
	Forward  uint64 // packets the reflector never received
	Reverse  uint64 // replies the reflector sent that did not come back in time
	Late     uint64 // replies that came after their timeout (also in Reverse)
}
