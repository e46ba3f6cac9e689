package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/reachd/reachd/internal/api"
)

// listenAPI opens the unix socket with its mode and group.
func (d *Daemon) listenAPI() (net.Listener, error) {
	a := d.cfg.API
	mode, _ := strconv.ParseUint(a.SocketMode, 8, 32)
	ln, err := api.ListenUnix(a.Socket, os.FileMode(mode))
	if err != nil {
		return nil, err
	}
	if got, err := api.ChownGroup(a.Socket, a.SocketGroup); err != nil {
		d.log.Warn("API socket: "+err.Error()+"; only root and group "+got+" can use reachctl", "socket", a.Socket, "mode", a.SocketMode, "group", got)
	} else {
		d.log.Info("API socket", "socket", a.Socket, "mode", a.SocketMode, "group", got)
	}
	return ln, nil
}

// listenTCPAPI opens the optional TCP listener. It refuses to start
// without a credential (validated in the config, checked again here):
// bearer tokens, or TLS with client certificates.
func (d *Daemon) listenTCPAPI() (net.Listener, http.Handler, error) {
	a := d.cfg.API
	var tokens api.Tokens
	if a.TokenFile != "" {
		t, err := api.LoadTokens(a.TokenFile)
		if err != nil {
			return nil, nil, err
		}
		tokens = t
	}
	if tokens == nil && a.TLS.ClientCAFile == "" {
		return nil, nil, fmt.Errorf("api.listen %s: refusing to serve the API over TCP without api.token-file or api.tls.client-ca-file", a.Listen)
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("api.listen: %w", err)
	}
	if a.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(a.TLS.CertFile, a.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("api.tls: %w", err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if a.TLS.ClientCAFile != "" {
			pem, err := os.ReadFile(a.TLS.ClientCAFile)
			if err != nil {
				ln.Close()
				return nil, nil, fmt.Errorf("api.tls.client-ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				ln.Close()
				return nil, nil, fmt.Errorf("api.tls.client-ca-file %s: no PEM certificate in it", a.TLS.ClientCAFile)
			}
			tc.ClientCAs = pool
			// Verified when presented; requests without one need a token.
			tc.ClientAuth = tls.VerifyClientCertIfGiven
		}
		ln = tls.NewListener(ln, tc)
	}
	d.log.Info("API on TCP", "listen", a.Listen, "tokens", len(tokens), "tls", a.TLS.CertFile != "", "client-certificates", a.TLS.ClientCAFile != "", "public-routes", a.PublicRoutes)
	return ln, api.RequireCredential(api.Audit(d.api, d.log), tokens, a.PublicRoutes), nil
}
