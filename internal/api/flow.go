package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// FlowBackend is what the flow endpoints need from the daemon.
type FlowBackend interface {
	// PingFlow pings a flow once (an unknown flow is ErrNotFound).
	PingFlow(ctx context.Context, id string, timeout time.Duration) (apitype.FlowPingResponse, error)
	Flows(ctx context.Context) ([]apitype.FlowState, error)
}

// MaxFlowPingTimeout bounds an on-demand ping's wait.
const MaxFlowPingTimeout = apitype.MaxFlowPingTimeout

// HandleFlows adds the seed's PUT /flows/{flow_id}/ping (also under /v1)
// and GET /v1/flows (each flow's status and loss).
func (s *Server) HandleFlows(b FlowBackend) {
	ping := func(w http.ResponseWriter, r *http.Request) {
		var req apitype.FlowPingRequest
		if err := ReadJSON(r, &req); err != nil {
			WriteError(w, err)
			return
		}
		timeout := apitype.DefaultFlowPingTimeout
		if req.Timeout != nil {
			timeout = time.Duration(*req.Timeout) * time.Millisecond
			if *req.Timeout <= 0 || timeout > MaxFlowPingTimeout {
				WriteError(w, fmt.Errorf("%w: timeout %d must be 1-%d milliseconds", ErrBadRequest, *req.Timeout, MaxFlowPingTimeout.Milliseconds()))
				return
			}
		}
		resp, err := b.PingFlow(r.Context(), r.PathValue("flow_id"), timeout)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, resp)
	}
	s.Handle("PUT /flows/{flow_id}/ping", ping)
	s.Handle("PUT /v1/flows/{flow_id}/ping", ping)
	s.Handle("GET /v1/flows", func(w http.ResponseWriter, r *http.Request) {
		fs, err := b.Flows(r.Context())
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, fs)
	})
}
