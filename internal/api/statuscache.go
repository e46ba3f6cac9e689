package api

import (
	"context"
	"sync"
	"time"
	"weak"

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
//
// An answer's buffer is reused by a later build once every request that
// joined its build has released it (written it or given up): a 1.6 MB
// answer each build, thirty builds a second, was most of the garbage the
// daemon made under the bench's API load.
type statusShare struct {
	building sync.Mutex // held by the build that runs: one at a time
	clk      clock.Clock

	mu     sync.Mutex
	next   *statusBuild // the build the next requests join; nil: none waiting
	notBef time.Time    // the earliest start of the next build
	// spare is what the next build may reuse, held weakly: while clients
	// poll it lives from build to build, and once they stop the next
	// garbage collection frees it (a 10,000-target daemon would otherwise
	// keep megabytes for one reachctl status an hour ago).
	spare weak.Pointer[statusSpare]
}

// statusSpare is memory a later build may write into.
type statusSpare struct {
	free [][]byte // released answers' buffers, at most keepBuffers
	// last is the status the last build encoded (StatusReuser).
	last apitype.Status
}

// spareLocked returns the spare memory, made anew when it was collected.
// c.mu is held.
func (c *statusShare) spareLocked() *statusSpare {
	sp := c.spare.Value()
	if sp == nil {
		sp = &statusSpare{}
		c.spare = weak.Make(sp)
	}
	return sp
}

type statusBuild struct {
	done chan struct{}
	body []byte
	err  error
	// Guarded by statusShare.mu:
	refs  int  // requests that joined and have not released it
	ended bool // body and err are set
}

// keepBuffers is how many released answer buffers wait for reuse: a build
// takes one while the requests of the one before may still be writing
// theirs.
const keepBuffers = 2

// statusDuty is how much of the time builds may take: the next build
// starts no sooner than its predecessor's duration × statusDuty after it.
const statusDuty = 5

// get returns the encoded status; build makes it. The body is valid until
// release, which the caller must call once, also after an error.
func (c *statusShare) get(ctx context.Context, build func(context.Context, apitype.Status) (apitype.Status, error)) (body []byte, release func(), err error) {
	c.mu.Lock()
	b := c.next
	start := b == nil
	if start {
		b = &statusBuild{done: make(chan struct{})}
		c.next = b
	}
	b.refs++
	c.mu.Unlock()
	if start {
		// The build serves every request that joins it: it must not end
		// with this one's context.
		go c.run(context.WithoutCancel(ctx), b, build)
	}
	release = sync.OnceFunc(func() { c.release(b) })
	select {
	case <-b.done:
		return b.body, release, b.err
	case <-ctx.Done():
		return nil, release, ctx.Err()
	}
}

// release drops one request's hold on b; the last one hands b's buffer on.
func (c *statusShare) release(b *statusBuild) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b.refs--
	c.recycle(b)
}

// recycle keeps b's buffer for a later build once b has ended and nobody
// holds it. c.mu is held.
func (c *statusShare) recycle(b *statusBuild) {
	if b.refs > 0 || !b.ended || b.body == nil {
		return
	}
	if sp := c.spareLocked(); len(sp.free) < keepBuffers {
		sp.free = append(sp.free, b.body[:0])
	}
	b.body = nil
}

func (c *statusShare) run(ctx context.Context, b *statusBuild, build func(context.Context, apitype.Status) (apitype.Status, error)) {
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
	sp := c.spareLocked() // held until this build ends
	var buf []byte
	if n := len(sp.free); n > 0 {
		buf, sp.free = sp.free[n-1], sp.free[:n-1]
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := c.clk.Now()
	v, err := build(ctx, sp.last)
	var body []byte
	if err == nil {
		body, err = encodeStatus(buf, &v)
		sp.last = v // encoded: nobody reads it any more
	}
	took := c.clk.Now().Sub(start)
	c.mu.Lock()
	b.body, b.err, b.ended = body, err, true
	c.notBef = start.Add(took * statusDuty)
	c.recycle(b) // when every request gave up meanwhile
	c.mu.Unlock()
	close(b.done)
}
