package feature

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// Without an owner a call runs in its caller; with one, on the owner's
// goroutine; after Stop, in its caller again. A second Start is refused.
func TestOwner(t *testing.T) {
	o := NewOwner()
	state := 0
	if err := o.Call(context.Background(), func() { state++ }); err != nil || state != 1 {
		t.Fatalf("call without an owner: %v, state %d", err, state)
	}
	ownerDone := make(chan struct{})
	quit := make(chan struct{})
	var ownerID, callID int
	started := make(chan struct{})
	go func() {
		defer close(ownerDone)
		if err := o.Start(func() error { ownerID = 7; return nil }); err != nil {
			t.Error(err)
			return
		}
		close(started)
		for {
			select {
			case fn := <-o.Requests():
				fn()
			case <-quit:
				o.Stop(func() { state += 100 })
				return
			}
		}
	}()
	<-started
	if err := o.Start(func() error { return nil }); !errors.Is(err, ErrRunning) {
		t.Errorf("second Start: %v", err)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.Call(context.Background(), func() { state++; callID = ownerID })
		}()
	}
	wg.Wait()
	if state != 11 || callID != 7 {
		t.Errorf("state %d, callID %d after 10 owned calls", state, callID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	blocked := NewOwner()
	blocked.Start(func() error { return nil }) // an owner that never serves
	if err := blocked.Call(ctx, func() { t.Error("ran") }); !errors.Is(err, context.Canceled) {
		t.Errorf("call with an ended context: %v", err)
	}
	close(quit)
	<-ownerDone
	if err := o.Call(context.Background(), func() { state++ }); err != nil || state != 112 {
		t.Errorf("call after Stop: %v, state %d", err, state)
	}
	if err := o.Start(func() error { return errors.New("no") }); err == nil {
		t.Error("a failed setup started an owner")
	}
}
