package linktest_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/daemon"
	"github.com/reachd/reachd/internal/feature/linktest"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// blockingSetter holds its first call until released, as an engine busy
// with other work would.
type blockingSetter struct {
	setter
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingSetter) SetExternal(ctx context.Context, service, path, source string, down bool, reason string) error {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.entered)
		<-b.release
	}
	return b.setter.SetExternal(ctx, service, path, source, down, reason)
}

// A reload that removes a test while its "down" verdict is on the way to
// the engine must not leave the path held down: the last word for the
// test's source is "clear".
func TestReloadDuringVerdictReleasesPath(t *testing.T) {
	run := func(ctx context.Context, o ttlloop.Options) (ttlloop.Report, error) {
		return ttlloop.Report{Sent: 10, Returned: 5, Lost: 5, LossPercent: 50}, nil
	}
	eng := &blockingSetter{entered: make(chan struct{}), release: make(chan struct{})}
	clk := clock.NewFake(time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)) // one run: time does not move
	s, err := linktest.New(linktest.Options{Tests: daemon.LinktestTests(parse(t, fakeConfig).Linktests), Engine: eng, Run: run, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()
	select {
	case <-eng.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no verdict reached the engine")
	}
	// The test goes away while its verdict is in flight.
	if err := s.Reload(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	close(eng.release)
	cancel()
	<-done // Run returns once the verdicts decided reached the engine
	stopped = true
	if calls := eng.get(); len(calls) == 0 || !strings.Contains(calls[len(calls)-1], " clear: ") {
		t.Fatalf("the path stays held down after the test was removed; engine calls:\n%s", strings.Join(calls, "\n"))
	}
}
