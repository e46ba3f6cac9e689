package heartbeat

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// startTCP runs one TCP receiver on loopback and returns its address and
// the channel of its events.
func startTCP(t *testing.T) (string, chan Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 1024)
	lc := Listener{Name: "t", Protocol: "tcp", Listen: "127.0.0.1:0"}
	done := make(chan struct{})
	go func() { defer close(done); Receive(ctx, lc, toChan(ctx, events), func(string) {}) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case e := <-events:
		if e.Bound == "" {
			t.Fatalf("first event %+v, want the bound address", e)
		}
		return e.Bound, events
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver did not bind")
	}
	return "", nil
}

// toChan sends a receiver's events to ch until ctx ends.
func toChan(ctx context.Context, ch chan<- Event) func(Event) bool {
	return func(e Event) bool {
		select {
		case ch <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// closedSoon reports whether the server closes c within d.
func closedSoon(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF
}

// A TCP heartbeat listener serves at most maxTCPConns connections at once;
// the ones over the limit are closed at once, and the ones it serves still
// count heartbeats.
func TestTCPConnectionLimit(t *testing.T) {
	old := maxTCPConns
	maxTCPConns = 4
	t.Cleanup(func() { maxTCPConns = old })
	addr, events := startTCP(t)
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for range maxTCPConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The served connections count: one heartbeat each.
	for _, c := range held {
		if _, err := c.Write([]byte("beat\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-events:
			if !e.Beat {
				t.Fatalf("event %+v, want a heartbeat", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a served connection's heartbeat was not counted")
		}
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if !closedSoon(extra, 10*time.Second) {
		t.Error("a connection over the limit was not closed")
	}
	// Freeing a slot lets the next connection in.
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("beat\n"))
		select {
		case <-events:
			c.Close()
			return
		case <-time.After(100 * time.Millisecond):
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("no connection was served after one closed")
		}
	}
}

// A connection that sends nothing for the idle window is closed.
func TestTCPIdleConnectionClosed(t *testing.T) {
	old := tcpIdle
	tcpIdle = func(Listener) time.Duration { return 50 * time.Millisecond }
	t.Cleanup(func() { tcpIdle = old })
	addr, _ := startTCP(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closedSoon(c, 10*time.Second) {
		t.Error("an idle connection stayed open")
	}
}

func TestTCPIdleDefault(t *testing.T) {
	for _, c := range []struct {
		timeout  time.Duration
		attempts int
		want     time.Duration
	}{
		{3 * time.Second, 1, 30 * time.Second},
		{10 * time.Second, 3, 60 * time.Second},
		{time.Second, 0, 30 * time.Second},
	} {
		lc := Listener{Attempts: c.attempts}
		lc.Timeout = c.timeout
		if got := tcpIdle(lc); got != c.want {
			t.Errorf("timeout %v × %d: idle %v, want %v", c.timeout, c.attempts, got, c.want)
		}
	}
}
