package apitype

import "time"

// Version is GET /v1/version: what the daemon runs.
type Version struct {
	Version   string    `json:"version"`
	GoVersion string    `json:"go-version"`
	Started   time.Time `json:"started"`
	PID       int       `json:"pid"`
}
