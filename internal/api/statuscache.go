package api

import (
	"context"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/clock"
)

// statusShare makes concurrent GET /v1/status requests share one snapshot
// and one encoding, and spaces the builds so that answering them costs at
// most about a fifth of one core however many clients poll: with 10,000
// targets a status is 1.7 MB of JSON, and 1,000 requests a second each
// building their own took both cores from the probes (detection went from
// 0.5 s to 3 s; bench/cmd/detect). A request never gets a snapshot taken
// before it arrived: it joins a build that has not started yet, or starts
// one. On a small config a build takes well under a millisecond, so the
// spacing is too.
type statusShare struct {
	building sync.Mutex // held by the build that runs: one at a time
	clk      clock.Clock

	mu     sync.Mutex
	next   *statusBuild // the build the next requests join; nil: none waiting
	notBef time.Time    // the earliest start of the next build
}

type statusBuild struct {
	done chan struct{}
	body []byte
	err  error
}

// statusDuty is how much of the time builds may take: the next build
// starts no sooner than its predecessor's duration × statusDuty after it.
const statusDuty = 5

// get returns the encoded status; build makes it.
func (c *statusShare) get(ctx context.Context, build func(context.Context) (apitype.Status, error)) ([]byte, error) {
	c.mu.Lock()
	b := c.next
	if b == nil {
		b = &statusBuild{done: make(chan struct{})}
		c.next = b
		c.mu.Unlock()
		// The build serves every request that joins it: it must not end
		// with this one's context.
		go c.run(context.WithoutCancel(ctx), b, build)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-b.done:
		return b.body, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *statusShare) run(ctx context.Context, b *statusBuild, build func(context.Context) (apitype.Status, error)) {
	c.building.Lock()
	defer c.building.Unlock()
	c.mu.Lock()
	wait := c.notBef.Sub(c.clk.Now())
	c.mu.Unlock()
	if wait > 0 {
		t := c.clk.NewTimer(wait)
		<-t.C()
	}
	// From here on, new requests wait for the next build: this one's
	// snapshot may be taken before they arrived.
	c.mu.Lock()
	if c.next == b {
		c.next = nil
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := c.clk.Now()
	v, err := build(ctx)
	if err == nil {
		b.body, err = encodeStatus(&v)
	}
	b.err = err
	took := c.clk.Now().Sub(start)
	c.mu.Lock()
	c.notBef = start.Add(took * statusDuty)
	c.mu.Unlock()
	close(b.done)
}
