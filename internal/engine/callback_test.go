package engine

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/probe"
)

// keepProber keeps every done callback instead of answering.
type keepProber struct {
	mu    sync.Mutex
	dones []func(probe.Result)
}

func (k *keepProber) Probe(_ probe.Request, done func(probe.Result)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dones = append(k.dones, done)
}

func (k *keepProber) Close() error { return nil }

func (k *keepProber) first() func(probe.Result) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.dones) == 0 {
		return nil
	}
	return k.dones[0]
}

// The Prober contract says done must not block. Results that arrive while
// the engine is stopped (a shutdown with many pending probes) used to fill
// a 4,096-slot channel and then block the prober's goroutine for ever.
func TestProbeCallbackNeverBlocks(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	kp := &keepProber{}
	eng, err := New(Options{Config: cfg, Probers: map[string]probe.Prober{"icmp": kp},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock.NewFake(simStart)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { eng.Run(ctx); close(stopped) }()
	// The first attempts are due at once: once the loop has gone round
	// twice they have been sent.
	for range 2 {
		if err := eng.do(ctx, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	if kp.first() == nil {
		t.Fatal("the engine sent no probe")
	}
	cancel()
	<-stopped

	done := kp.first()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for range 10000 {
			done(probe.Result{Detail: "timeout"})
		}
	}()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("done blocked with the engine stopped")
	}
}
