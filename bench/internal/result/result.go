// Package result is what the bench probe programs report to the
// orchestrator (one JSON document on stdout) and the statistics it computes
// over them.
package result

import (
	"math"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Sample is one answered probe to a sampled target.
type Sample struct {
	Target string  `json:"target"`
	Sent   float64 `json:"sent"` // unix seconds when the request left
	RTT    int64   `json:"rtt_ns"`
}

// Transition is one monitor's move to down (detection mode).
type Transition struct {
	Target string `json:"target"`
	At     int64  `json:"at_unix_ns"`
}

// Run is one probe program's report.
type Run struct {
	Tool       string       `json:"tool"`
	Targets    int          `json:"targets"`
	Sent       uint64       `json:"sent"`
	Received   uint64       `json:"received"`
	Lost       uint64       `json:"lost"`      // requests whose reply never came (no run-end in-flight ones)
	Unmatched  uint64       `json:"unmatched"` // replies for nothing pending (late, duplicate)
	SendErrs   uint64       `json:"send_errs"`
	Goroutines int          `json:"goroutines_max"`
	FDs        int          `json:"fds_max"`
	Sockets    int          `json:"sockets"`
	Samples    []Sample     `json:"samples,omitempty"`
	Down       []Transition `json:"down,omitempty"`
	AllUpAt    int64        `json:"all_up_at_unix_ns,omitempty"`
}

// Peak samples the goroutine and fd counts of this process every period
// until Stop, and keeps the maxima.
type Peak struct {
	mu             sync.Mutex
	goroutines, fd int
	stop           chan struct{}
	done           chan struct{}
}

// StartPeak starts sampling.
func StartPeak(period time.Duration) *Peak {
	p := &Peak{stop: make(chan struct{}), done: make(chan struct{})}
	p.sample()
	go func() {
		defer close(p.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.sample()
			}
		}
	}()
	return p
}

func (p *Peak) sample() {
	g := runtime.NumGoroutine()
	f := 0
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		f = len(ents) - 1 // ReadDir's own handle of the directory
	}
	p.mu.Lock()
	p.goroutines, p.fd = max(p.goroutines, g), max(p.fd, f)
	p.mu.Unlock()
}

// Stop takes a last sample, ends sampling and returns the maxima. The
// sampler's own goroutine is counted; it is part of the program's cost.
func (p *Peak) Stop() (goroutines, fds int) {
	p.sample()
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.goroutines, p.fd
}

// Quantile returns the q-quantile (0..1) of xs by nearest rank; xs is
// sorted in place. NaN for none.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	i = min(max(i, 0), len(xs)-1)
	return xs[i]
}
