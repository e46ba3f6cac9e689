package heartbeat

import (
	"context"
	"fmt"
	"net/http"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/feature"
)

// Backend is what the heartbeat endpoints need from the daemon.
type Backend interface {
	Heartbeats(ctx context.Context) (apitype.HeartbeatStatus, error)
	// SetBypass takes mode force-on, force-off or auto; an unknown group is
	// ErrNotFound, a bad mode httpjson.ErrBadRequest.
	SetBypass(ctx context.Context, group, mode string) (apitype.HeartbeatGroup, error)
}

// Routes adds GET /v1/heartbeats (listeners, groups, what bypass
// holds changed) and POST /v1/bypass/{group} ({"mode": "force-on"}).
func Routes(s feature.Router, b Backend) {
	s.Handle("GET /v1/heartbeats", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Heartbeats(r.Context())
		if err != nil {
			httpjson.WriteError(w, err)
			return
		}
		httpjson.WriteJSON(w, http.StatusOK, st)
	})
	s.Handle("POST /v1/bypass/{group}", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.BypassForceRequest
		if err := httpjson.ReadJSON(r, &req); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		switch req.Mode {
		case "force-on", "force-off", "auto":
		default:
			httpjson.WriteError(w, fmt.Errorf("%w: mode %q must be force-on, force-off or auto", httpjson.ErrBadRequest, req.Mode))
			return
		}
		g, err := b.SetBypass(r.Context(), r.PathValue("group"), req.Mode)
		if err != nil {
			httpjson.WriteError(w, err)
			return
		}
		httpjson.WriteJSON(w, http.StatusOK, g)
	})
}
