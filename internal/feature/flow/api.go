package flow

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/feature"
)

// Backend is what the flow endpoints need from the daemon.
type Backend interface {
	// PingFlow pings a flow once (an unknown flow is httpjson.ErrNotFound: see APIError).
	PingFlow(ctx context.Context, id string, timeout time.Duration) (apitype.FlowPingResponse, error)
	Flows(ctx context.Context) ([]apitype.FlowState, error)
}

// Routes adds the seed's PUT /flows/{flow_id}/ping (also under /v1)
// and GET /v1/flows (each flow's status and loss).
func Routes(s feature.Router, b Backend) {
	ping := func(w http.ResponseWriter, r *http.Request) {
		var req apitype.FlowPingRequest
		if err := httpjson.ReadJSON(r, &req); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		timeout := apitype.DefaultFlowPingTimeout
		if req.Timeout != nil {
			timeout = time.Duration(*req.Timeout) * time.Millisecond
			if *req.Timeout <= 0 || timeout > apitype.MaxFlowPingTimeout {
				httpjson.WriteError(w, fmt.Errorf("%w: timeout %d must be 1-%d milliseconds", httpjson.ErrBadRequest, *req.Timeout, apitype.MaxFlowPingTimeout.Milliseconds()))
				return
			}
		}
		resp, err := b.PingFlow(r.Context(), r.PathValue("flow_id"), timeout)
		if err != nil {
			httpjson.WriteError(w, err)
			return
		}
		httpjson.WriteJSON(w, http.StatusOK, resp)
	}
	s.Handle("PUT /flows/{flow_id}/ping", ping)
	s.Handle("PUT /v1/flows/{flow_id}/ping", ping)
	s.Handle("GET /v1/flows", func(w http.ResponseWriter, r *http.Request) {
		fs, err := b.Flows(r.Context())
		if err != nil {
			httpjson.WriteError(w, err)
			return
		}
		httpjson.WriteJSON(w, http.StatusOK, fs)
	})
}
