// Package events is reachd's event feed: state changes, decisions,
// overrides, reloads, bypass entries and exits, and whatever other features
// publish (BGP announce, withdraw, drain). It keeps the last events in a
// fixed ring and hands new ones to subscribers without ever blocking the
// publisher: a subscriber that does not keep up loses events and is told
// how many.
package events

import (
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// Publisher is what a feature needs to add events to the feed.
type Publisher interface {
	Publish(e apitype.Event)
}

// Discard is a Publisher that drops every event.
type Discard struct{}

// Publish implements Publisher.
func (Discard) Publish(apitype.Event) {}

// Feed is the event ring. The zero value is not usable; use New.
type Feed struct {
	now func() time.Time

	mu    sync.Mutex
	ring  []apitype.Event
	next  int
	n     int
	seq   uint64
	subs  map[*Sub]struct{}
	drops uint64
}

// New returns a feed that keeps the last size events.
func New(size int, now func() time.Time) *Feed {
	if now == nil {
		now = time.Now
	}
	return &Feed{now: now, ring: make([]apitype.Event, size), subs: map[*Sub]struct{}{}}
}

// Publish adds e (its time set now when zero) and offers it to every
// subscriber without waiting.
func (f *Feed) Publish(e apitype.Event) {
	if e.Time.IsZero() {
		e.Time = f.now()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	e.Seq = f.seq
	f.ring[f.next] = e
	f.next = (f.next + 1) % len(f.ring)
	if f.n < len(f.ring) {
		f.n++
	}
	for s := range f.subs {
		select {
		case s.C <- e:
		default:
			s.lost++
			f.drops++
		}
	}
}

// Filter selects events; empty fields match everything. Kinds is a
// comma-separated list; Text matches service, subject or reason as a
// case-insensitive substring.
type Filter struct {
	Kinds   string
	Service string
	Text    string
}

// Match reports whether e passes the filter.
func (fl Filter) Match(e apitype.Event) bool {
	if fl.Kinds != "" {
		ok := false
		for _, k := range strings.Split(fl.Kinds, ",") {
			if strings.TrimSpace(k) == e.Kind {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if fl.Service != "" && e.Service != fl.Service {
		return false
	}
	if fl.Text != "" {
		t := strings.ToLower(fl.Text)
		if !strings.Contains(strings.ToLower(e.Service+" "+e.Subject+" "+e.Reason+" "+e.From+" "+e.To), t) {
			return false
		}
	}
	return true
}

// Recent returns up to n events that match, newest first.
func (f *Feed) Recent(n int, fl Filter) []apitype.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []apitype.Event{}
	for i := 0; i < f.n && len(out) < n; i++ {
		e := f.ring[(f.next-1-i+2*len(f.ring))%len(f.ring)]
		if fl.Match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Restore puts saved events (oldest first) back into an empty feed, so a
// restart keeps the list; sequence numbers continue after them.
func (f *Feed) Restore(evs []apitype.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(evs) > len(f.ring) {
		evs = evs[len(evs)-len(f.ring):]
	}
	for _, e := range evs {
		f.ring[f.next] = e
		f.next = (f.next + 1) % len(f.ring)
		if f.n < len(f.ring) {
			f.n++
		}
		f.seq = max(f.seq, e.Seq)
	}
}

// All returns every kept event, oldest first (for saving).
func (f *Feed) All() []apitype.Event {
	evs := f.Recent(len(f.ring), Filter{})
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// Sub is a subscription: new events arrive on C.
type Sub struct {
	C    chan apitype.Event
	lost uint64
}

// Subscribe returns a subscription with a buffer of size events.
func (f *Feed) Subscribe(size int) *Sub {
	s := &Sub{C: make(chan apitype.Event, size)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s
}

// Unsubscribe ends s; C is not closed (a reader may still be selecting).
func (f *Feed) Unsubscribe(s *Sub) {
	f.mu.Lock()
	delete(f.subs, s)
	f.mu.Unlock()
}
