// Package heartbeat listens for heartbeats from inspection appliances and,
// when too many stop, puts the network into bypass mode (the seed's
// fastbypass monitor, shared/seeds/002, as one more kind of monitor and
// policy of reachd).
//
// The parts, in the order data flows:
//
//   - internal/probe/heartbeat: the receiver; one goroutine per listener
//     owns a UDP or TCP socket and reports every matching heartbeat.
//   - internal/monitor/liveness: the pure per-listener state machine
//     (unknown → alive / failed after attempts × timeout without a
//     heartbeat).
//   - internal/policy/threshold: Decide (the group threshold) and Desired
//     (local/global precedence, start-up hold, forced modes), pure.
//   - manager.go: Manager, the one goroutine that owns listeners, groups
//     and forced modes; it applies decisions through its Actions interface
//     (internal/dataplane/bypass, filled in by the daemon) and reloads
//     keeping unchanged listeners with their sockets and counters.
package heartbeat
