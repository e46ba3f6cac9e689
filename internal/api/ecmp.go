package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
)

// ecmpBackend is what the ECMP routes need: drains and run-time next-hops
// of ecmp services.
type ecmpBackend interface {
	SetDrain(ctx context.Context, service, path string, drained bool) error
	AddNextHop(ctx context.Context, service string, nh apitype.NextHop) error
	RemoveNextHop(ctx context.Context, service, name string) error
}

// ECMPRoutes adds the drain and next-hop endpoints:
//
//	POST   /v1/paths/{service}/{path}/drain        {"drained": true}
//	POST   /v1/services/{service}/nexthops         {"name", "interface", "gateway", "weight"}
//	DELETE /v1/services/{service}/nexthops/{name}
//
// Each answers with the service's path-info.
func (s *Server) ECMPRoutes(b ecmpBackend) {
	s.mux.HandleFunc("POST /v1/paths/{service}/{path}/drain", func(w http.ResponseWriter, r *http.Request) {
		req := apitype.DrainRequest{Drained: true}
		if err := httpjson.ReadJSON(r, &req); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		s.answer(w, r, b.SetDrain(r.Context(), r.PathValue("service"), r.PathValue("path"), req.Drained))
	})
	s.mux.HandleFunc("POST /v1/services/{service}/nexthops", func(w http.ResponseWriter, r *http.Request) {
		var nh apitype.NextHop
		if err := httpjson.ReadJSON(r, &nh); err != nil {
			httpjson.WriteError(w, err)
			return
		}
		if _, err := netip.ParseAddr(nh.Gateway); err != nil {
			httpjson.WriteError(w, fmt.Errorf("%w: gateway %q is not an IP address", ErrBadRequest, nh.Gateway))
			return
		}
		s.answer(w, r, b.AddNextHop(r.Context(), r.PathValue("service"), nh))
	})
	s.mux.HandleFunc("DELETE /v1/services/{service}/nexthops/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.answer(w, r, b.RemoveNextHop(r.Context(), r.PathValue("service"), r.PathValue("name")))
	})
}

// answer writes err, or the service's path-info.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	pi, err := s.b.PathInfo(r.Context())
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	svc := r.PathValue("service")
	httpjson.WriteJSON(w, http.StatusOK, apitype.PathInfo{svc: pi[svc]})
}
