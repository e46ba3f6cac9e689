package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
)

// countingBackend counts Status calls and makes each take a while of
// simulated time.
type countingBackend struct {
	fakeBackend
	clk   *clock.Fake
	calls atomic.Int64
	inUse atomic.Int64
	most  atomic.Int64
	took  time.Duration
}

func (b *countingBackend) Status(ctx context.Context) (apitype.Status, error) {
	n := b.calls.Add(1)
	if c := b.inUse.Add(1); c > b.most.Load() {
		b.most.Store(c)
	}
	defer b.inUse.Add(-1)
	if b.took > 0 {
		b.clk.Advance(b.took)
	}
	return apitype.Status{Config: string(rune('a' + n%26))}, nil
}

// Many clients polling /v1/status at once share builds: one at a time,
// spaced by statusDuty × a build's duration, every client answered.
func TestStatusBuildsAreShared(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	b := &countingBackend{clk: clk, took: 20 * time.Millisecond}
	s := newServer(b, clk)
	// Simulated time moves when a build waits for its turn: to the end
	// of the wait.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		for ctx.Err() == nil {
			if clk.WaitFor(ctx, func(n int) bool { return n > 0 }) != nil {
				return
			}
			if next, ok := clk.Next(); ok {
				clk.Set(next)
			}
		}
	}()
	const clients, each = 50, 10
	var wg sync.WaitGroup
	var ok atomic.Int64
	start := clk.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, httptest.NewRequest("GET", "/v1/status", nil))
				if w.Code == http.StatusOK && w.Header().Get("Content-Type") == "application/json" && len(w.Body.Bytes()) > 0 {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := clk.Now().Sub(start)
	if ok.Load() != clients*each {
		t.Errorf("%d of %d requests answered", ok.Load(), clients*each)
	}
	if b.most.Load() != 1 {
		t.Errorf("%d builds ran at once, want 1", b.most.Load())
	}
	// Each build takes 20 ms and the next starts 100 ms after it began:
	// at most elapsed / 100 ms + 1 builds (500 requests).
	if max := int64(elapsed/(statusDuty*b.took)) + 2; b.calls.Load() > max {
		t.Errorf("%d builds in %v for %d requests, want at most %d", b.calls.Load(), elapsed, clients*each, max)
	}
	t.Logf("%d requests, %d builds in %v", clients*each, b.calls.Load(), elapsed.Round(time.Millisecond))
}

// A request never gets a snapshot from before it arrived: sequential
// requests each see a new build.
func TestStatusIsFresh(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	b := &countingBackend{clk: clk}
	s := newServer(b, clk)
	for i := range 5 {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/v1/status", nil))
		if got := b.calls.Load(); got != int64(i+1) {
			t.Fatalf("request %d: %d builds", i, got)
		}
	}
}

// A released answer's buffer is reused by a later build; one still held
// by a request that is writing it is not.
func TestStatusBuffersReused(t *testing.T) {
	c := &statusShare{clk: clock.NewFake(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))}
	n := 0
	var prevs []string
	build := func(_ context.Context, prev apitype.Status) (apitype.Status, error) {
		n++
		prevs = append(prevs, prev.Config)
		return apitype.Status{Config: fmt.Sprintf("build %d", n)}, nil
	}
	ctx := context.Background()
	b1, rel1, err := c.get(ctx, build)
	if err != nil {
		t.Fatal(err)
	}
	want1 := string(b1)
	b2, rel2, err := c.get(ctx, build)
	if err != nil {
		t.Fatal(err)
	}
	if &b2[0] == &b1[0] || string(b1) != want1 {
		t.Fatal("a build wrote into an answer that was still held")
	}
	rel1()
	rel1() // a second release of the same hold changes nothing
	b3, rel3, err := c.get(ctx, build)
	if err != nil {
		t.Fatal(err)
	}
	if &b3[0] != &b1[0] {
		t.Error("the released buffer was not reused")
	}
	if !strings.Contains(string(b2), `"build 2"`) || !strings.Contains(string(b3), `"build 3"`) {
		t.Errorf("answers %q and %q; want builds 2 and 3", b2, b3)
	}
	if fmt.Sprint(prevs) != "[ build 1 build 2]" {
		t.Errorf("the builds were given %q to write into; want nothing, then each the one before", prevs)
	}
	rel2()
	if sp := c.spare.Value(); sp == nil || len(sp.free) != 1 {
		t.Errorf("spare %+v after every hold but one was released; want one buffer", sp)
	}
	runtime.KeepAlive(b1)
	b1, b2, b3 = nil, nil, nil
	rel3()
	runtime.GC()
	if c.spare.Value() != nil {
		t.Error("the spare memory outlived a garbage collection with no build running")
	}
}
