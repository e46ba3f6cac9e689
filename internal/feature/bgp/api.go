package bgp

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/feature"
)

// Backend is what the BGP endpoints need from the daemon. Unknown
// names are httpjson.ErrNotFound, requests to fix httpjson.ErrBadRequest.
type Backend interface {
	Neighbors(ctx context.Context) ([]apitype.BGPNeighbor, error)
	RouteTable(ctx context.Context) (apitype.BGPRoutes, error)
	Announcements(ctx context.Context) ([]apitype.Announcement, error)
	SetDrain(ctx context.Context, name string, drain bool) (apitype.Announcement, error)
	Register(ctx context.Context, name, vip string, monitors, communities []string) (apitype.Announcement, error)
	Unregister(ctx context.Context, name string) error
	Info(ctx context.Context) (apitype.GocastInfo, error)
}

// Routes adds the BGP endpoints:
//
//	GET  /v1/bgp/neighbors          sessions
//	GET  /v1/bgp/routes             announced and learned routes
//	GET  /v1/announce               announcements
//	POST /v1/announce/{name}/drain  operator drain (body {"drain": false} ends it)
//	POST /v1/announce/{name}/undrain
//	GET  /register, /unregister, /info   gocast-compatible (GET changes state there, as in gocast)
func Routes(s feature.Router, b Backend) {
	s.Handle("GET /v1/bgp/neighbors", func(w http.ResponseWriter, r *http.Request) {
		n, err := b.Neighbors(r.Context())
		reply(w, n, err)
	})
	s.Handle("GET /v1/bgp/routes", func(w http.ResponseWriter, r *http.Request) {
		rt, err := b.RouteTable(r.Context())
		reply(w, rt, err)
	})
	s.Handle("GET /v1/announce", func(w http.ResponseWriter, r *http.Request) {
		a, err := b.Announcements(r.Context())
		reply(w, a, err)
	})
	s.Handle("POST /v1/announce/{name}/drain", func(w http.ResponseWriter, r *http.Request) {
		req := apitype.AnnounceDrainRequest{Drain: true}
		if err := httpjson.ReadJSON(r, &req); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		a, err := b.SetDrain(r.Context(), r.PathValue("name"), req.Drain)
		reply(w, a, err)
	})
	s.Handle("POST /v1/announce/{name}/undrain", func(w http.ResponseWriter, r *http.Request) {
		a, err := b.SetDrain(r.Context(), r.PathValue("name"), false)
		reply(w, a, err)
	})
	s.Handle("GET /register", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		name, vip := q.Get("name"), q.Get("vip")
		if name == "" || vip == "" {
			httpjson.WriteError(w, fmt.Errorf("%w: give name and vip, e.g. /register?name=web&vip=192.0.2.53/32&monitor=port:tcp:80", httpjson.ErrBadRequest))
			return
		}
		var comms []string
		if c := q.Get("vip_communities"); c != "" {
			comms = strings.Split(c, ",")
		}
		a, err := b.Register(r.Context(), name, vip, q["monitor"], comms)
		reply(w, a, err)
	})
	s.Handle("GET /unregister", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" {
			httpjson.WriteError(w, fmt.Errorf("%w: give name, e.g. /unregister?name=web", httpjson.ErrBadRequest))
			return
		}
		err := b.Unregister(r.Context(), name)
		reply(w, map[string]string{"result": "unregistered", "name": name}, err)
	})
	s.Handle("GET /info", func(w http.ResponseWriter, r *http.Request) {
		i, err := b.Info(r.Context())
		reply(w, i, err)
	})
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	httpjson.WriteJSON(w, http.StatusOK, v)
}
