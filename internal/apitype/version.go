// Package apitype holds the JSON shapes of reachd's API. It imports only
// the standard library, so the client and reachctl stay small.
package apitype

import "time"

// Version is GET /v1/version: what the daemon runs.
type Version struct {
	Version   string    `json:"version"`
	GoVersion string    `json:"go-version"`
	Started   time.Time `json:"started"`
	PID       int       `json:"pid"`
}
