package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/reachd/reachd/internal/apitype"
)

// HeartbeatBackend is what the heartbeat endpoints need from the daemon.
type HeartbeatBackend interface {
	Heartbeats(ctx context.Context) (apitype.HeartbeatStatus, error)
	// SetBypass takes mode force-on, force-off or auto; an unknown group is
	// ErrNotFound, a bad mode ErrBadRequest.
	SetBypass(ctx context.Context, group, mode string) (apitype.HeartbeatGroup, error)
}

// HandleHeartbeats adds GET /v1/heartbeats (listeners, groups, what bypass
// holds changed) and POST /v1/bypass/{group} ({"mode": "force-on"}).
func (s *Server) HandleHeartbeats(b HeartbeatBackend) {
	s.Handle("GET /v1/heartbeats", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Heartbeats(r.Context())
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, st)
	})
	s.Handle("POST /v1/bypass/{group}", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.BypassForceRequest
		if err := ReadJSON(r, &req); err != nil {
			WriteError(w, err)
			return
		}
		switch req.Mode {
		case "force-on", "force-off", "auto":
		default:
			WriteError(w, fmt.Errorf("%w: mode %q must be force-on, force-off or auto", ErrBadRequest, req.Mode))
			return
		}
		g, err := b.SetBypass(r.Context(), r.PathValue("group"), req.Mode)
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, g)
	})
}
