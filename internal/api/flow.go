package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/reachd/reachd/internal/flow"
)

// FlowBackend is what the flow endpoints need from the daemon.
type FlowBackend interface {
	// PingFlow pings a flow once (an unknown flow is ErrNotFound).
	PingFlow(ctx context.Context, id string, timeout time.Duration) (flow.PingResponse, error)
	Flows(ctx context.Context) ([]flow.FlowState, error)
}

// FlowPingRequest is the optional body of PUT /flows/{flow_id}/ping:
// timeout in milliseconds, default 2000 (seed document).
type FlowPingRequest struct {
	Timeout *int64 `json:"timeout,omitempty"`
}

// MaxFlowPingTimeout bounds an on-demand ping's wait.
const MaxFlowPingTimeout = 60 * time.Second

// HandleFlows adds the seed's PUT /flows/{flow_id}/ping (also under /v1)
// and GET /v1/flows (each flow's status and loss).
func (s *Server) HandleFlows(b FlowBackend) {
	ping := func(w http.ResponseWriter, r *http.Request) {
		var req FlowPingRequest
		if err := ReadJSON(r, &req); err != nil {
			WriteError(w, err)
			return
		}
		timeout := flow.DefaultOnDemandTimeout
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

// FlowError maps the flow package's errors to the API's: an unknown flow
// is a 404.
func FlowError(err error) error {
	if errors.Is(err, flow.ErrUnknownFlow) && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w (%w)", err, ErrNotFound)
	}
	return err
}
