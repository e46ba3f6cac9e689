package icmp

import (
	"container/heap"
	"time"

	"github.com/reachd/reachd/internal/probe"
)

// timerHeap orders pending probes by deadline: one goroutine and one timer
// serve every target, instead of a timer per probe.
type timerHeap []*pending

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	pd := x.(*pending)
	pd.index = len(*h)
	*h = append(*h, pd)
}
func (h *timerHeap) Pop() any {
	old := *h
	pd := old[len(old)-1]
	old[len(old)-1] = nil
	pd.index = -1
	*h = old[:len(old)-1]
	return pd
}

// armAll arms the deadlines of pds. It wakes the expiry goroutine only when
// its timer would fire too late. Replies empty the heap all the time, so
// "first in the heap" is nearly every probe; waking for each cost a
// goroutine switch and a timer reset per probe. A timer that is armed for
// an earlier deadline (even of a probe answered since) fires first and
// re-arms for the heap's new head.
func (p *Pinger) armAll(pds []*pending) {
	p.tmu.Lock()
	wake := false
	for _, pd := range pds {
		heap.Push(&p.timers, pd)
		if pd.index == 0 && (p.armed.IsZero() || pd.deadline.Before(p.armed)) {
			p.armed = pd.deadline
			wake = true
		}
	}
	p.tmu.Unlock()
	if wake {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// expire ends probes whose deadline passed.
func (p *Pinger) expire() {
	defer p.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		p.tmu.Lock()
		var wait time.Duration = time.Hour
		now := time.Now()
		var due []*pending
		for len(p.timers) > 0 {
			pd := p.timers[0]
			if d := pd.deadline.Sub(now); d > 0 {
				wait = d
				break
			}
			heap.Pop(&p.timers)
			due = append(due, pd)
		}
		if len(p.timers) > 0 {
			p.armed = now.Add(wait)
		} else {
			p.armed = time.Time{}
		}
		p.tmu.Unlock()
		for _, pd := range due {
			pc := pd.pc
			pc.mu.Lock()
			mine := pc.pending[pd.seq] == pd
			if mine {
				delete(pc.pending, pd.seq)
			}
			sent := pd.sent
			pc.mu.Unlock()
			if mine {
				p.stats.timeouts.Add(1)
				pd.done(probe.Result{Sent: sent, Detail: "timeout"})
			}
		}
		t.Reset(wait)
		select {
		case <-p.done:
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}
