package kafka

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// slowDisk holds the spool's lock, as a Send waiting on slow fsyncs does,
// until the returned function is called.
func slowDisk(p *Producer) (release func()) {
	p.mu.Lock()
	return p.mu.Unlock
}

func reports(flow string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, flow+"="+string(statusOf(i)))
	}
	return out
}

func statusOf(i int) Status {
	if i%2 == 0 {
		return StatusFailed
	}
	return StatusOperational
}

// TestEnqueueDoesNotWaitForTheDisk: while the spool is stuck on its disk,
// QueueReport returns at once; the reports are spooled and delivered in
// order once the disk answers. (Send, which the flows called before, waited
// seconds on a busy disk in the fleet benchmark, stopping the flow's pings.)
func TestEnqueueDoesNotWaitForTheDisk(t *testing.T) {
	port := freePort(t)
	cluster(t, port)
	p := newProducer(t, port, t.TempDir(), nil)
	run(t, p)
	release := slowDisk(p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			p.QueueReport("flow", statusOf(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		release()
		t.Fatal("QueueReport waited for the disk")
	}
	if st := p.Stats(); st.Queued != 5 || st.Spooled != 0 {
		release()
		t.Fatalf("stats %+v with the disk stuck: want 5 queued, none spooled", st)
	}
	release()
	got := consume(t, port, 5)
	if diff := cmp.Diff(reports("flow", 0, 5), statuses(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	waitFor(t, "queue and spool empty", func() bool { st := p.Stats(); return st.Queued == 0 && st.Spooled == 0 })
}

// TestEnqueueBound: a full queue drops its oldest reports and counts them.
func TestEnqueueBound(t *testing.T) {
	port := freePort(t)
	cluster(t, port)
	p := newProducer(t, port, t.TempDir(), func(o *Options) { o.QueueSize = 3 })
	run(t, p)
	release := slowDisk(p)
	p.QueueReport("flow", statusOf(0))
	// The writer took report 0 and waits for the disk.
	waitFor(t, "the writer to take report 0", func() bool {
		p.qmu.Lock()
		defer p.qmu.Unlock()
		return len(p.queue) == 0
	})
	for i := 1; i < 6; i++ {
		p.QueueReport("flow", statusOf(i))
	}
	if st := p.Stats(); st.Dropped != 2 || st.Queued != 4 {
		release()
		t.Fatalf("stats %+v: want reports 1 and 2 dropped, 0 and 3-5 queued", st)
	}
	release()
	got := consume(t, port, 4)
	want := append(reports("flow", 0, 1), reports("flow", 3, 6)...)
	if diff := cmp.Diff(want, statuses(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestCloseSpoolsTheQueue: what is queued when the producer closes is on
// disk for the next one; a report queued after Close is spooled at once.
func TestCloseSpoolsTheQueue(t *testing.T) {
	port := freePort(t) // no broker
	dir := t.TempDir()
	p := newProducer(t, port, dir, nil)
	release := slowDisk(p)
	for i := range 3 {
		p.QueueReport("f"+strconv.Itoa(i), StatusFailed)
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	time.Sleep(50 * time.Millisecond) // Close waits for the writer, which waits for the disk
	release()
	<-closed
	p.QueueReport("late", StatusFailed)
	if st := p.Stats(); st.Spooled != 4 || st.Queued != 0 || st.Dropped != 0 {
		t.Errorf("stats after Close %+v: want 4 spooled", st)
	}
	cluster(t, port)
	p2 := newProducer(t, port, dir, nil)
	run(t, p2)
	got := consume(t, port, 4)
	if diff := cmp.Diff([]string{"f0=FAILED", "f1=FAILED", "f2=FAILED", "late=FAILED"}, statuses(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
