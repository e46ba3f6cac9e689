package clock

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// FDTimer is a Timer on the system clock that a thread of its own waits
// for, blocked in read(2) on a Linux timerfd, instead of a Go runtime
// timer. The kernel wakes that thread at the deadline, to the nanosecond,
// and it takes a free Go processor at once. A runtime timer is not as
// prompt in two cases that a busy daemon meets all the time:
//
//   - When every processor is idle, the runtime sleeps in epoll_wait, whose
//     timeout is in whole milliseconds: a timer due in 0.3 ms fires about
//     1 ms later. The engine's loop wakes every half millisecond at 10,000
//     probes a second, so that was most of its send jitter (p50 0.65 ms).
//   - A timer belongs to a processor. When that processor is idle and
//     another is busy with network events (the API writing status
//     answers), the timer waits until some thread looks at the idle
//     processor's timers; under the bench's API load that took up to 7 ms.
//
// It costs one file descriptor and one thread blocked in the kernel; Close
// releases both. BENCHMARKS.md ("The API under load: send jitter") has the
// numbers.
type FDTimer struct {
	fd   int
	c    chan time.Time
	done chan struct{} // closed when the reader has returned

	mu     sync.Mutex
	closed bool
	armed  bool
	due    time.Time // the armed deadline, with its monotonic reading
}

// NewFDTimer returns a stopped FDTimer.
func NewFDTimer() (*FDTimer, error) {
	// Blocking: the reader's thread sleeps in the kernel, not in Go's
	// poller (which would bring back the millisecond rounding).
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	t := &FDTimer{fd: fd, c: make(chan time.Time, 1), done: make(chan struct{})}
	go t.read()
	return t, nil
}

func (t *FDTimer) read() {
	defer close(t.done)
	var buf [8]byte // the count of expiries; one for a one-shot timer
	for {
		_, err := unix.Read(t.fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		now := time.Now()
		t.mu.Lock()
		if t.closed || err != nil {
			t.mu.Unlock()
			return
		}
		sent := false
		// An expiry read after a Reset may be the previous deadline's
		// (read before the Reset, handled after it): the current
		// deadline decides.
		if t.armed && !now.Before(t.due) {
			t.armed = false
			select {
			case t.c <- now:
				sent = true
			default:
			}
		}
		t.mu.Unlock()
		if sent {
			t.handOver()
		}
	}
}

// handOver lets the receiver run before this goroutine blocks in read(2)
// again. A receiver woken by the send is next to run on this processor;
// going straight back into read(2) would leave it there, in a processor
// held by a system call, until the runtime's monitor takes the processor
// back: 20 µs at best, up to 10 ms when it has been idle. One Gosched is
// not always enough: in one schedule of 61 (the processor's schedtick) the
// runtime looks at its global queue first, where Gosched has just put this
// goroutine, and runs it again. Under the bench's API load that was 2.3 %
// of the engine's wakeups, 13 of them late by 1 to 6.6 ms in 3 s. The
// schedule after that one takes the local queue first, so two yields
// always give the receiver its turn. (Whether the receiver has run cannot
// be seen from here: a receiver waiting in select gets the value directly,
// so the channel is empty at once.)
func (t *FDTimer) handOver() {
	runtime.Gosched()
	runtime.Gosched()
}

// C fires once at the deadline.
func (t *FDTimer) C() <-chan time.Time { return t.c }

// Stop disarms the timer; it reports whether the timer was armed. No value
// is received from C after Stop returns (Go 1.23 timer semantics).
func (t *FDTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.armed
	t.armed = false
	t.drain()
	if !t.closed {
		_ = unix.TimerfdSettime(t.fd, 0, &unix.ItimerSpec{}, nil)
	}
	return was
}

// Reset arms the timer d from now (at once when d <= 0); it reports whether
// the timer was armed. No value of an earlier deadline is received from C
// after Reset returns.
func (t *FDTimer) Reset(d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.armed
	t.drain()
	if t.closed {
		return was
	}
	// A zero it_value disarms a timerfd: the shortest wait is 1 ns.
	d = max(d, time.Nanosecond)
	// Read before the kernel's clock starts: the expiry's read always
	// finds its deadline passed.
	t.armed, t.due = true, time.Now().Add(d)
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		// Not with a valid descriptor and a positive value. Should it
		// happen, firing now is safer than never: an owner loop
		// computes its next deadline on every turn.
		t.armed = false
		t.c <- time.Now() // drained above
	}
	return was
}

func (t *FDTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}

// Close ends the reader and releases the descriptor; C never fires after.
func (t *FDTimer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed, t.armed = true, false
	t.drain()
	// Closing a descriptor does not end a read(2) blocked on it: expire
	// now, and the reader sees closed.
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(1)}
	err := unix.TimerfdSettime(t.fd, 0, &spec, nil)
	t.mu.Unlock()
	if err != nil {
		// The reader cannot be woken; leave it and its descriptor rather
		// than close one it may still read.
		return fmt.Errorf("timerfd: waking the reader to close: %w", err)
	}
	<-t.done
	return unix.Close(t.fd)
}
