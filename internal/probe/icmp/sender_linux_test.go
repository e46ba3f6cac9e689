package icmp

import (
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/reachd/reachd/internal/probe"
	"golang.org/x/sys/unix"
)

// gate makes sendmmsg wait, for messages to IPv4 addresses only, until
// it is opened; it counts how many calls are waiting.
type gate struct {
	open    chan struct{}
	waiting chan struct{}
	once    sync.Once
}

func holdIPv4Sends(t *testing.T) *gate {
	t.Helper()
	g := &gate{open: make(chan struct{}), waiting: make(chan struct{}, 100)}
	real := sendmmsg
	sendmmsg = func(fd int, hdrs []unix.Mmsghdr) (int, error) {
		if (*unix.RawSockaddr)(unsafe.Pointer(hdrs[0].Hdr.Name)).Family == unix.AF_INET {
			g.waiting <- struct{}{}
			<-g.open
		}
		return real(fd, hdrs)
	}
	t.Cleanup(func() {
		g.release()
		sendmmsg = real
	})
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// ProbeBatch only queues: it returns while the socket's sendmmsg has not
// returned, and a socket whose send is stuck does not hold up another
// socket's probes. (Before, the engine's goroutine made the system call
// itself, so every probe of every socket waited for it.)
func TestSendsDoNotWaitForEachOther(t *testing.T) {
	ns := targetNS(t)
	p := New(Options{})
	defer p.Close()
	v4, v6 := netip.MustParseAddr("203.0.113.8"), netip.MustParseAddr("2001:db8:ffff::8")
	if r := ping(t, ns, p, v4.String(), 3*time.Second); !r.OK { // open the IPv4 socket
		t.Fatalf("first ping: %+v", r)
	}
	g := holdIPv4Sends(t)
	res4 := make(chan probe.Result, 1)
	returned := make(chan struct{})
	go ns.Do(func() error {
		p.Probe(probe.Request{Target: v4, Timeout: 10 * time.Second}, func(r probe.Result) { res4 <- r })
		close(returned)
		return nil
	})
	select {
	case <-g.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the IPv4 send never started")
	}
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Probe waited for its sendmmsg to return")
	}
	// The IPv6 socket sends and is answered while the IPv4 send is stuck.
	if r := ping(t, ns, p, v6.String(), 3*time.Second); !r.OK {
		t.Errorf("IPv6 ping while the IPv4 socket's send is stuck: %+v", r)
	}
	select {
	case r := <-res4:
		t.Fatalf("IPv4 probe reported before its send returned: %+v", r)
	default:
	}
	g.release()
	select {
	case r := <-res4:
		if !r.OK {
			t.Errorf("IPv4 probe after its send returned: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("IPv4 probe never reported")
	}
}

// Probes still queued behind a send when the Pinger closes are reported
// once, as failures, like the probes already waiting for replies.
func TestCloseReportsQueuedProbes(t *testing.T) {
	ns := targetNS(t)
	p := New(Options{})
	v4 := netip.MustParseAddr("203.0.113.8")
	if r := ping(t, ns, p, v4.String(), 3*time.Second); !r.OK {
		t.Fatalf("first ping: %+v", r)
	}
	g := holdIPv4Sends(t)
	var mu sync.Mutex
	got := map[int][]probe.Result{}
	report := func(i int) func(probe.Result) {
		return func(r probe.Result) { mu.Lock(); got[i] = append(got[i], r); mu.Unlock() }
	}
	ns.Do(func() error {
		p.Probe(probe.Request{Target: v4, Timeout: time.Minute}, report(0))
		return nil
	})
	<-g.waiting // probe 0 is in sendmmsg; the next ones queue behind it
	ns.Do(func() error {
		p.ProbeBatch([]probe.Request{{Target: v4, Timeout: time.Minute}, {Target: v4, Timeout: time.Minute}},
			[]func(probe.Result){report(1), report(2)})
		return nil
	})
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	// Release the send once Close has begun (it then waits for the send
	// to return before the socket closes, and for the sender).
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close never started")
	}
	g.release()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < 3; i++ {
		if len(got[i]) != 1 {
			t.Errorf("probe %d reported %d times: %+v", i, len(got[i]), got[i])
		}
	}
	for i := 1; i < 3; i++ {
		if len(got[i]) == 1 && (got[i][0].OK || got[i][0].Detail != "pinger closed") {
			t.Errorf("queued probe %d: %+v, want failed with \"pinger closed\"", i, got[i][0])
		}
	}
	// After Close, a probe fails at once.
	late := make(chan probe.Result, 1)
	ns.Do(func() error {
		p.Probe(probe.Request{Target: v4, Timeout: time.Minute}, func(r probe.Result) { late <- r })
		return nil
	})
	select {
	case r := <-late:
		if r.OK {
			t.Errorf("probe after Close: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("probe after Close never reported")
	}
}
