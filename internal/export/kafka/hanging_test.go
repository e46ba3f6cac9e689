package kafka

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestBrokerNeverAnswers: a "broker" that accepts connections and never
// answers. Report still returns at once (the message is on disk), attempts
// time out and are counted, the spool stays bounded (oldest dropped and
// counted), and Close returns promptly.
func TestBrokerNeverAnswers(t *testing.T) {
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
	p := newProducer(t, ln.Addr().(*net.TCPAddr).Port, t.TempDir(), func(o *Options) { o.MaxSpooled = 10; o.AttemptTimeout = 300 * time.Millisecond })
	done := make(chan struct{})
	go func() { p.Run(t.Context()); close(done) }()
	start := time.Now()
	for i := range 25 {
		if err := p.Report("f"+strconv.Itoa(i), StatusFailed); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("25 reports took %v against a silent broker", d)
	}
	// A report that drops a message out of an attempt under way is counted
	// as dropped only when that attempt ends, which can be after an earlier
	// attempt's failure (slow fsyncs): wait for every drop to be counted.
	waitFor(t, "attempts to time out, every drop counted", func() bool {
		st := p.Stats()
		return st.Failures >= 1 && st.Dropped >= 15
	})
	st := p.Stats()
	t.Logf("silent broker: %+v", st)
	if st.Spooled > 10 || st.Dropped != 15 || st.Produced != 0 {
		t.Errorf("stats %+v: want 10 spooled, 15 dropped", st)
	}
	closed := time.Now()
	p.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	t.Logf("Close returned after %v", time.Since(closed))
}
