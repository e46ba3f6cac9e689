package history

import (
	"sort"
	"sync"
	"time"
)

// Store holds the series by key ("path/internet/broadband",
// "flow/alpha/forward", "linktest/wan0-loop"). It is safe for concurrent
// use: one writer (the recorder) and the HTTP handlers that read.
type Store struct {
	mu     sync.Mutex
	levels []Level
	series map[string]*Series
	// max bounds the number of series (and so the memory).
	max int
}

// NewStore returns an empty store of at most max series with levels.
func NewStore(levels []Level, max int) *Store {
	return &Store{levels: levels, series: map[string]*Series{}, max: max}
}

// get returns the series of key, creating it; nil when the store is full.
func (st *Store) get(key string) *Series {
	s := st.series[key]
	if s == nil {
		if len(st.series) >= st.max {
			return nil
		}
		s = NewSeries(st.levels)
		st.series[key] = s
	}
	return s
}

// Add records one probe of key.
func (st *Store) Add(key string, at time.Time, ok bool, rtt time.Duration) {
	st.mu.Lock()
	if s := st.get(key); s != nil {
		s.Add(at, ok, rtt)
	}
	st.mu.Unlock()
}

// AddSummary records a run of key measured elsewhere.
func (st *Store) AddSummary(key string, at time.Time, sent, lost uint32, q [NQ]float32) {
	st.mu.Lock()
	if s := st.get(key); s != nil {
		s.AddSummary(at, sent, lost, q)
	}
	st.mu.Unlock()
}

// Mark records a state transition of key.
func (st *Store) Mark(key string, at time.Time, state string) {
	st.mu.Lock()
	if s := st.get(key); s != nil {
		s.Mark(at, state)
	}
	st.mu.Unlock()
}

// Flush closes the intervals that ended before now in every series.
func (st *Store) Flush(now time.Time) {
	st.mu.Lock()
	for _, s := range st.series {
		s.Flush(now)
	}
	st.mu.Unlock()
}

// View is what a chart needs of one series over a time range.
type View struct {
	Step   time.Duration
	Points []Bucket
	Before *Mark
	Marks  []Mark
}

// Query returns key's history between from and to (false: no such series).
func (st *Store) Query(key string, now, from, to time.Time) (View, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.series[key]
	if s == nil {
		return View{}, false
	}
	var v View
	v.Step, v.Points = s.Points(now, from, to)
	v.Before, v.Marks = s.Marks(from, to)
	return v, true
}

// Last returns key's most recent closed bucket of the level of step.
func (st *Store) Last(key string, step time.Duration) (Bucket, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.series[key]
	if s == nil {
		return Bucket{}, false
	}
	return s.Last(step)
}

// Keys lists the series, sorted.
func (st *Store) Keys() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]string, 0, len(st.series))
	for k := range st.series {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Len is the number of series.
func (st *Store) Len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.series)
}
