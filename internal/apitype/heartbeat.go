package apitype

import "time"

// The heartbeat and bypass API: GET /v1/heartbeats, POST /v1/bypass/{group}.

// HeartbeatStatus is GET /v1/heartbeats.
type HeartbeatStatus struct {
	Listeners []HeartbeatListener `json:"listeners"`
	Groups    []HeartbeatGroup    `json:"groups"`
	// Changed is what reachd holds changed in the kernel right now.
	Changed BypassChanged `json:"changed"`
}

// HeartbeatListener is one heartbeat listener.
type HeartbeatListener struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Listen   string `json:"listen"`
	// Bound is the address actually bound (differs from Listen for port 0).
	Bound         string     `json:"bound,omitempty"`
	State         string     `json:"state"` // unknown, alive, failed
	Since         time.Time  `json:"since"`
	Reason        string     `json:"reason"`
	LastHeartbeat *time.Time `json:"last-heartbeat"`
	Count         uint64     `json:"count"`
	Timeout       string     `json:"timeout"`
	Attempts      int        `json:"attempts"`
	// Error is the socket error when the listener cannot bind.
	Error string `json:"error,omitempty"`
}

// HeartbeatGroup is one threshold group.
type HeartbeatGroup struct {
	Name      string   `json:"name"`
	Listeners []string `json:"listeners"`
	Threshold int      `json:"failed-threshold"`
	// Mode is what the heartbeats say: unknown, normal or bypass.
	Mode string `json:"mode"`
	// Force is auto, force-on or force-off.
	Force string `json:"force"`
	// Effective is what is applied: unknown, normal, bypass, forced-on or
	// forced-off.
	Effective string    `json:"effective"`
	Reason    string    `json:"reason"`
	Since     time.Time `json:"since"`
}

// BypassChanged lists the kernel changes reachd holds.
type BypassChanged struct {
	RemovedAddresses []string `json:"removed-addresses"`
	DownInterfaces   []string `json:"down-interfaces"`
}

// BypassForceRequest is the body of POST /v1/bypass/{group}.
type BypassForceRequest struct {
	Mode string `json:"mode"` // force-on, force-off or auto
}
