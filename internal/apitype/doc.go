// Package apitype holds every JSON shape of reachd's HTTP API: what the
// daemon's handlers write and what the client (and so reachctl) reads. It
// imports only the standard library, so the client and the CLI do not pull
// in the daemon (tailscale's client/tailscale/apitype is the model). A
// feature adds its shapes in a file named after it (flow.go, linktest.go).
package apitype
