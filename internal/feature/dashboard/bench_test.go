package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/probe"
)

// BenchmarkOneTab measures what one open dashboard tab costs the daemon,
// in CPU time and allocations per second of a busy period: every second a
// path changes state (a transition and a decision: two events, one
// debounced overview), every 5 s the periodic overview, and every 30 s the
// page reloads its 4 visible charts (3 h, 1-minute intervals, full). The
// daemon has 10 services of 2 paths. One op is one such second; the
// overview travels through a real HTTP server-sent-event stream.
//
//	go test -run '^$' -bench OneTab -benchtime 120x ./internal/feature/dashboard
func BenchmarkOneTab(b *testing.B) {
	f := start(b, b.TempDir(), "")
	f.eng.many = 10
	now := time.Now()
	for s := 0; s < 10; s++ {
		for _, p := range []string{"broadband", "lte"} {
			for sec := 3 * 3600; sec > 0; sec -= 2 {
				f.rec.store.Add(PathKey(fmt.Sprintf("svc%d", s), p), now.Add(-time.Duration(sec)*time.Second), sec%97 != 0, time.Duration(10+sec%7)*time.Millisecond)
			}
		}
	}
	resp, err := http.Get(f.base + "/api/stream")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	overviews := make(chan struct{}, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if sc.Text() == "event: overview" {
				overviews <- struct{}{}
			}
		}
	}()
	<-overviews // the first, on connect
	chart := func(i int) {
		r, err := http.Get(f.base + "/api/chart.svg?range=3h&w=1200&h=220&series=" + PathKey(fmt.Sprintf("svc%d", i%10), "broadband"))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	var ru0, ru1 syscall.Rusage
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.rec.feed.Publish(apitype.Event{Kind: apitype.EventPathState, Service: "svc1", Subject: "broadband", From: "up", To: "down", Reason: "3 of 3 attempts lost"})
		f.rec.feed.Publish(apitype.Event{Kind: apitype.EventDecision, Service: "svc1", Subject: "lte", From: "broadband", To: "lte"})
		select {
		case <-overviews:
		case <-time.After(5 * time.Second):
			b.Fatal("no overview on the stream")
		}
		if i%5 == 4 {
			f.d.hub.publish(context.Background())
			<-overviews
		}
		if i%30 < 4 {
			chart(i)
		}
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&m1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / time.Duration(b.N)
	b.ReportMetric(float64(cpu.Microseconds()), "cpu-µs/s")
	b.ReportMetric(100*cpu.Seconds(), "cpu-%")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/s")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N)/1024, "KiB/s")
}

// BenchmarkRecorder is the engine's side: one Attempt observation, which
// only copies into the queue, and its handling into the rings.
func BenchmarkRecorder(b *testing.B) {
	f := start(b, b.TempDir(), "")
	res := probe.Result{OK: true, RTT: 12 * time.Millisecond, Sent: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f.rec.Attempt("internet", "broadband", netipZero, res)
		for len(f.rec.ch) > obsQueue/2 {
			runtime.Gosched()
		}
	}
	b.StopTimer()
	for len(f.rec.ch) > 0 {
		runtime.Gosched()
	}
	b.ReportMetric(float64(f.rec.dropped.Load()), "dropped")
}
