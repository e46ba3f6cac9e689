package opentsdb

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// blackHole accepts TCP connections and never reads or answers: a peer
// that hangs. It returns its address; connections are closed at cleanup.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestHangingServer: an OpenTSDB endpoint that accepts and never answers.
// Every request ends at Timeout and is counted as a failure, Put never
// waits, the buffer stays bounded (oldest dropped, counted), goroutines
// stay flat, and Close returns promptly.
func TestHangingServer(t *testing.T) {
	before := runtime.NumGoroutine()
	e, err := New(Options{URL: "http://" + blackHole(t), BufferSize: 50, BatchSize: 10, FlushInterval: 10 * time.Millisecond,
		Timeout: 200 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.Run(context.Background()); close(done) }()
	start := time.Now()
	for i := range 1000 {
		e.PutLatency("f", "forward", time.Now(), time.Duration(i)*time.Microsecond)
		if i%100 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("1000 Puts took %v against a hanging server", d)
	}
	waitFor(t, "requests to time out", func() bool { return e.Stats().Failures >= 3 })
	st := e.Stats()
	t.Logf("hanging server: %+v, goroutines %d → %d", st, before, runtime.NumGoroutine())
	if st.Pending > 50 || st.Dropped < 1000-50-10 || st.Sent != 0 {
		t.Errorf("stats %+v: want at most 50 pending, the rest dropped", st)
	}
	if g := runtime.NumGoroutine(); g > before+20 {
		t.Errorf("%d goroutines, %d before", g, before)
	}
	closed := time.Now()
	e.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close with a request hanging")
	}
	if d := time.Since(closed); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}
