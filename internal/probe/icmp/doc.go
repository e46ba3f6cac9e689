// Package icmp is reachd's ICMP echo engine. One socket per (address family,
// fwmark, interface) is shared by every target on it; replies are matched by
// identifier, sequence and an unguessable per-probe token in the payload, so a
// reply that guesses id and sequence but not the token cannot hold a dead
// path up (it is ignored and counted). Round-trip times come from kernel
// receive timestamps (SO_TIMESTAMPNS), not from when the Go scheduler ran the
// reader. Raw sockets are used when the process may open them, unprivileged
// ping sockets (SOCK_DGRAM, IPPROTO_ICMP) otherwise.
//
// Probe and ProbeBatch only queue: each socket has a sender goroutine that
// sends what is queued with sendmmsg, 64 requests a call, and a reader
// goroutine that reads replies with recvmmsg. The caller, the engine's
// goroutine, never waits for a system call (a sendmmsg of 64 requests
// takes hundreds of microseconds, and on a veth the targets' replies are
// made inside it), nor does one socket's send wait for another's.
package icmp
