package dashboard

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/events"
)

// hub builds the overview once per change and hands the same bytes to
// every open page, so a tab costs one JSON encoding per change, shared.
type hub struct {
	d    *Dashboard
	mu   sync.Mutex
	subs map[chan []byte]struct{}
	last []byte
}

// Debounce collects the changes of one failover (transition, decision,
// events) into one update; Refresh re-sends the overview for the RTTs.
const (
	debounce = 100 * time.Millisecond
	refresh  = 5 * time.Second
)

func newHub(d *Dashboard) *hub { return &hub{d: d, subs: map[chan []byte]struct{}{}} }

func (h *hub) subscribe() (chan []byte, []byte) {
	ch := make(chan []byte, 2)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	last := h.last
	h.mu.Unlock()
	return ch, last
}

func (h *hub) unsubscribe(ch chan []byte) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// run rebuilds the overview when an event arrives (after debounce) and
// every refresh while a page is open. sub is its feed subscription, taken
// by Serve before the listener answers, so no event of an open page is
// missed while this goroutine is still starting.
func (h *hub) run(ctx context.Context, sub *events.Sub) {
	defer h.d.opts.Feed.Unsubscribe(sub)
	tick := h.d.clk.NewTicker(refresh)
	defer tick.Stop()
	var due <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.C:
			if due == nil {
				t := h.d.clk.NewTimer(debounce)
				due = t.C()
			}
		case <-due:
			due = nil
			h.publish(ctx)
		case <-tick.C():
			if h.count() > 0 {
				h.publish(ctx)
			}
		}
	}
}

func (h *hub) publish(ctx context.Context) {
	if h.count() == 0 {
		h.mu.Lock()
		h.last = nil // rebuilt for the next page that opens
		h.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	ov, err := h.d.overview(ctx)
	cancel()
	if err != nil {
		return
	}
	b, err := json.Marshal(ov)
	if err != nil {
		return
	}
	h.mu.Lock()
	h.last = b
	for ch := range h.subs {
		select {
		case ch <- b:
		default: // the page is behind; it gets the next one
		}
	}
	h.mu.Unlock()
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
