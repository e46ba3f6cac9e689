package config

import (
	"fmt"
	"net"
	"strings"
)

// validateAPI checks the api section: the TCP listener changes routes, so
// it needs a credential (bearer tokens or mutual TLS); public routes are
// read-only ones. The token file also serves the dashboard's actions, so
// it may stand without a TCP listener when the dashboard is on.
func validateAPI(a *API, dashboard bool, c *checker) {
	if a.SocketGroup == "" {
		a.SocketGroup = DefaultSocketGroup
	}
	t := a.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		c.add("api.tls", "give both cert-file and key-file")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		c.add("api.tls.client-ca-file", "mutual TLS needs the server's cert-file and key-file too")
	}
	if a.Listen == "" {
		if (a.TokenFile != "" && !dashboard) || t.CertFile != "" || len(a.PublicRoutes) > 0 {
			c.add("api.listen", "token-file, tls and public-routes are for the TCP listener (token-file also for dashboard.listen); set api.listen (e.g. 127.0.0.1:9470) or remove them")
		}
		return
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		c.add("api.listen", "%q is not host:port; write e.g. 127.0.0.1:9470", a.Listen)
	}
	if a.TokenFile == "" && t.ClientCAFile == "" {
		c.add("api.listen", "the TCP API can change routes, so it needs a credential: set api.token-file (lines \"NAME TOKEN\") or api.tls.client-ca-file (mutual TLS)")
	}
	for i, r := range a.PublicRoutes {
		method, path, ok := strings.Cut(strings.TrimSpace(r), " ")
		if !ok || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t") {
			c.add(fmt.Sprintf("api.public-routes[%d]", i), "%q: write METHOD /path, e.g. \"GET /path-info\"", r)
			continue
		}
		if method != "GET" && method != "HEAD" {
			c.add(fmt.Sprintf("api.public-routes[%d]", i), "%q: only read-only routes (GET, HEAD) may be public; state-changing calls always need a credential", r)
		}
	}
}
