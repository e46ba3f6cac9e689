// Package feature is what every feature beside the path engine shares: the
// small interfaces through which a feature registers its HTTP routes, and
// Owner, which hands a feature's state to its Run goroutine. Each
// feature is a package below this one (heartbeat, flow, linktest, and the
// next ones) that owns its state, takes plain Options built from the config
// by internal/daemon, and is registered there explicitly, in a fixed order
// (see ARCHITECTURE.md).
package feature

import "net/http"

// Router is where a feature adds its HTTP routes: the API server on the
// unix socket (and the optional TCP listener). Patterns are net/http's
// ("POST /v1/linktest"). Handlers read and write JSON with
// internal/api/httpjson and take their shapes from internal/apitype.
type Router interface {
	Handle(pattern string, h http.HandlerFunc)
}
