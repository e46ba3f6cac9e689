package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestAnycastLoadBalancerRestart: the load balancer's reachd is killed
// (SIGKILL) and started again while clients hold connections to the VIP.
// Its learned next-hops are not persisted: the kernel state it left
// (service route, spreading rule, conntrack marks) stays while it is down,
// and after the restart the engine keeps it until the BGP sessions come
// back and feed the same next-hops (same marks: they come from a hash of
// service and name). No connection breaks or moves at any step, and new
// connections keep working.
func TestAnycastLoadBalancerRestart(t *testing.T) {
	a := startAnycast(t)
	s1, s2 := a.path(0), a.path(1)
	both := strings.Join([]string{s1, s2}, ",")
	waitUsable(t, a.lb, both, 60*time.Second)
	conns, per := dialN(t, a.top, a.top.VIP4, 16)
	if per["s1"] == 0 || per["s2"] == 0 {
		t.Fatalf("connections did not spread over both servers: %v", per)
	}

	a.lb.Kill()
	stayed(t, "load balancer killed", conns)
	more, _ := dialN(t, a.top, a.top.VIP4, 4)

	if err := a.lb.Restart(); err != nil {
		t.Fatal(err)
	}
	// While the sessions come back: every few hundred ms, every
	// connection still answers from its server.
	all := append(append([]*vconn{}, conns...), more...)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		stayed(t, "load balancer restarting", all)
		time.Sleep(300 * time.Millisecond)
	}
	waitUsable(t, a.lb, both, 30*time.Second)
	stayed(t, "load balancer back", all)
	_, per = dialN(t, a.top, a.top.VIP4, 8)
	if per["s1"]+per["s2"] != 8 {
		t.Errorf("new connections after the restart: %v", per)
	}
}
