package opentsdb

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reachd/reachd/internal/clock"
)

func run(t *testing.T, e *Exporter) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.Run(context.Background()) }()
	t.Cleanup(func() { e.Close(); wg.Wait() })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !clock.WaitUntil(4*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// fakeTSDB records the bodies of /api/put and answers with status().
type fakeTSDB struct {
	mu     sync.Mutex
	points []Point
	reqs   int
	status atomic.Int32
}

func (f *fakeTSDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/put" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	var pts []Point
	if err := json.NewDecoder(r.Body).Decode(&pts); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	f.reqs++
	st := int(f.status.Load())
	if st == 0 || st/100 == 2 {
		f.points = append(f.points, pts...)
	}
	f.mu.Unlock()
	if st == 0 {
		st = http.StatusNoContent
	}
	w.WriteHeader(st)
}

func (f *fakeTSDB) got() ([]Point, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Point(nil), f.points...), f.reqs
}

func TestBatchingAndFormat(t *testing.T) {
	f := &fakeTSDB{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	e, err := New(Options{URL: srv.URL, BatchSize: 3, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e)
	at := time.UnixMilli(1531157435563)
	e.PutLatency("flowping-alpha", "forward", at, 5*time.Millisecond)
	e.PutLatency("flowping-alpha", "reverse", at, 2500*time.Microsecond)
	for i := range 5 {
		e.Put(Point{Metric: "m", Timestamp: int64(i), Value: float64(i), Tags: map[string]string{"k": "v"}})
	}
	waitFor(t, "7 points", func() bool { p, _ := f.got(); return len(p) == 7 })
	pts, reqs := f.got()
	want := []Point{
		{Metric: "sdn.flow.latency", Timestamp: 1531157435563, Value: 5, Tags: map[string]string{"flowid": "flowping-alpha", "direction": "forward"}},
		{Metric: "sdn.flow.latency", Timestamp: 1531157435563, Value: 2.5, Tags: map[string]string{"flowid": "flowping-alpha", "direction": "reverse"}},
	}
	if diff := cmp.Diff(want, pts[:2]); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}
	if reqs != 3 { // 3 + 3 + 1
		t.Errorf("%d requests, want 3", reqs)
	}
	// The server has the points before the exporter has read its answer
	// and counted them as sent: wait for the count.
	waitFor(t, "7 points counted as sent", func() bool { return e.Stats().Sent >= 7 })
	if st := e.Stats(); st.Sent != 7 || st.Dropped != 0 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRetryAndBadRequest(t *testing.T) {
	f := &fakeTSDB{}
	f.status.Store(503)
	srv := httptest.NewServer(f)
	defer srv.Close()
	e, _ := New(Options{URL: srv.URL, BatchSize: 10, FlushInterval: 10 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	run(t, e)
	e.PutLatency("f", "forward", time.Now(), time.Millisecond)
	waitFor(t, "failures", func() bool { return e.Stats().Failures >= 3 })
	f.status.Store(204)
	waitFor(t, "delivery after recovery", func() bool { return e.Stats().Sent == 1 })

	f.status.Store(400)
	e.PutLatency("f", "forward", time.Now(), time.Millisecond)
	waitFor(t, "drop of rejected point", func() bool { return e.Stats().Dropped == 1 })
	if st := e.Stats(); st.Pending != 0 {
		t.Errorf("rejected point still pending: %+v", st)
	}
}

func TestBufferBoundNeverBlocks(t *testing.T) {
	// Nothing listens on this server once closed: every request fails.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	e, _ := New(Options{URL: url, BufferSize: 100, BatchSize: 10, FlushInterval: 10 * time.Millisecond, MinBackoff: time.Hour})
	run(t, e)
	start := time.Now()
	for i := range 100_000 {
		if !e.Put(Point{Metric: "m", Timestamp: int64(i)}) {
			t.Fatal("Put returned false before Close")
		}
	}
	// A Put that waited for the dead endpoint would take at least the
	// hour of backoff; the bound is generous so a loaded -race run passes.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("100000 Puts took %v: Put waits for the endpoint", d)
	}
	// The failure is counted before its batch goes back into the buffer
	// (or is dropped from it): wait until every point is pending or dropped
	// again (nothing is sent again within the hour's backoff).
	var st Stats
	waitFor(t, "first failure, its batch back in the buffer", func() bool {
		st = e.Stats()
		return st.Failures >= 1 && uint64(st.Pending)+st.Dropped+st.Sent == 100_000
	})
	if st.Pending != 100 || st.Dropped != 100_000-100 || st.Sent != 0 {
		t.Errorf("stats %+v, want 100 pending and 99900 dropped", st)
	}
	// The newest points are the ones kept.
	e.mu.Lock()
	last := e.buf[len(e.buf)-1].Timestamp
	e.mu.Unlock()
	if last != 99_999 {
		t.Errorf("newest kept point %d", last)
	}
	e.Close()
	if e.Put(Point{}) {
		t.Error("Put after Close returned true")
	}
	e.Close() // idempotent
}

func TestNewErrors(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:4242", "ftp://x"} {
		if _, err := New(Options{URL: u}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
