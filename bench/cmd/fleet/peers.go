package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/probe/stamp"
)

// peer is a simulated remote end of one flow: the project's STAMP
// reflector on its own loopback address (127.100.0.0/14), stopped and
// started again on the same address and port to make the flow fail and
// recover.
type peer struct {
	addr netip.AddrPort // port 0 until the first up

	mu   sync.Mutex
	r    *stamp.Reflector
	done chan struct{}
}

// peerAddr is peer k's address: 127.100.0.1 onwards (any 127/8 address is
// on lo).
func peerAddr(k int) netip.Addr {
	k++
	return netip.AddrFrom4([4]byte{127, byte(100 + k>>16), byte(k >> 8), byte(k)})
}

// up starts the reflector if it is not running.
func (p *peer) up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.r != nil {
		return nil
	}
	var r *stamp.Reflector
	var err error
	for range 20 { // the port may linger for a moment after Close
		r, err = stamp.NewReflector(stamp.ReflectorOptions{Addr: p.addr, AnyPort: true, Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("peer %v: %w", p.addr, err)
	}
	p.addr = r.Addr()
	p.r, p.done = r, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		r.Run(context.Background())
	}(p.done)
	return nil
}

// down stops the reflector and waits for it.
func (p *peer) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.r == nil {
		return
	}
	p.r.Close()
	<-p.done
	p.r = nil
}

// flapping is how long peers stay up and down, each drawn uniformly.
type flapping struct {
	upMin, upMax, downMin, downMax time.Duration
}

func uniform(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// flap takes p down and up until ctx ends, then leaves it up. The first
// up period is random in [0, upMax) so that the peers do not move in
// step. A failure to rebind is reported on errs.
func (p *peer) flap(ctx context.Context, f flapping, seed uint64, errs chan<- error) {
	rng := rand.New(rand.NewPCG(seed, 17))
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	defer func() {
		if err := p.up(); err != nil {
			errs <- err
		}
	}()
	if !wait(uniform(rng, 0, f.upMax)) {
		return
	}
	for {
		p.down()
		if !wait(uniform(rng, f.downMin, f.downMax)) {
			return
		}
		if err := p.up(); err != nil {
			errs <- err
			return
		}
		if !wait(uniform(rng, f.upMin, f.upMax)) {
			return
		}
	}
}
