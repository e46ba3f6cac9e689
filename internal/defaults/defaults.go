// Package defaults holds the values that the config fills in and that the
// parts running without a config (a prober, a feature built by a test or a
// benchmark) fall back to, defined once. Standard library only.
package defaults

import "time"

const (
	// StampPort is the UDP port assigned to STAMP (RFC 8762 §4.1): the
	// reflector's default listen port and a flow peer's default port.
	StampPort = 862

	// FlowPingInterval and FlowFailDelay are a flow's defaults (seed
	// document "Flow pings": flow.ping.interval and flow.ping.fail.delay).
	FlowPingInterval = time.Second
	FlowFailDelay    = 10 * time.Second
)
