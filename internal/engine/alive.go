package engine

import "context"

// Ping returns once the engine's goroutine has run an empty request: the
// proof of life that the systemd watchdog wants. A busy engine still
// answers quickly, because its loop serves requests between batches of
// probe results; a wedged one does not, and ctx ends first.
func (e *Engine) Ping(ctx context.Context) error { return e.do(ctx, func() {}) }

// Stall blocks the engine's goroutine until release is closed. It is a test
// hook: the engine then looks wedged to everything that asks it something
// (the watchdog stops being fed). It returns once the engine is blocked.
func (e *Engine) Stall(ctx context.Context, release <-chan struct{}) error {
	select {
	case e.requests <- func() { <-release }:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
