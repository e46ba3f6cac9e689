package feature

import (
	"context"
	"errors"
	"sync"
)

// ErrRunning is Owner.Start's answer when the state already has its owner.
var ErrRunning = errors.New("already running")

// Owner hands a feature's state to one goroutine: while the feature's Run
// owns it, Call queues closures that Run's loop executes (it selects on
// Requests); before Run started and after it gave the state up there is no
// owner, and Call runs the closure in its caller under Owner's mutex, so
// that calls at start-up and shutdown neither race nor hang. Make one with
// NewOwner.
type Owner struct {
	mu      sync.Mutex
	running bool
	stopped chan struct{} // closed when the running owner gave the state up
	reqs    chan func()
}

// NewOwner returns an Owner with no running owner.
func NewOwner() *Owner { return &Owner{reqs: make(chan func())} }

// Requests is what Run's loop receives and runs.
func (o *Owner) Requests() <-chan func() { return o.reqs }

// Start makes the calling goroutine the owner, after setup ran under the
// mutex (the last access to the state without an owner). A setup error, or
// an owner already running (ErrRunning), leaves it without one.
func (o *Owner) Start(setup func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.running {
		return ErrRunning
	}
	if err := setup(); err != nil {
		return err
	}
	o.running, o.stopped = true, make(chan struct{})
	return nil
}

// Stop gives the state up after teardown ran under the mutex; calls from
// then on run in their callers.
func (o *Owner) Stop(teardown func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	teardown()
	o.running = false
	close(o.stopped)
}

// Call runs fn with the state: on the owner's goroutine while there is
// one, else here under the mutex. It returns ctx's error if ctx ends
// before fn could run; once the owner took fn, Call waits for its end.
func (o *Owner) Call(ctx context.Context, fn func()) error {
	for {
		o.mu.Lock()
		if !o.running {
			fn()
			o.mu.Unlock()
			return nil
		}
		stopped := o.stopped
		o.mu.Unlock()
		done := make(chan struct{})
		select {
		case o.reqs <- func() { fn(); close(done) }:
			<-done
			return nil
		case <-stopped: // the owner gave the state up: run it here
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
