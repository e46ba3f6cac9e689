package history

import "time"

// maxMarks is how many state transitions a series keeps for its chart.
const maxMarks = 64

// Mark is a state transition drawn on a chart's time axis.
type Mark struct {
	At    int64 // Unix milliseconds
	State string
}

// marks is a fixed ring of the last transitions.
type marks struct {
	buf  [maxMarks]Mark
	next int
	n    int
}

func (m *marks) add(k Mark) {
	m.buf[m.next] = k
	m.next = (m.next + 1) % maxMarks
	if m.n < maxMarks {
		m.n++
	}
}

// all returns the marks oldest first.
func (m *marks) all() []Mark {
	out := make([]Mark, 0, m.n)
	for i := 0; i < m.n; i++ {
		out = append(out, m.buf[(m.next-m.n+i+maxMarks)%maxMarks])
	}
	return out
}

// Mark records a state transition at at.
func (s *Series) Mark(at time.Time, state string) {
	s.marks.add(Mark{At: at.UnixMilli(), State: state})
}

// Marks returns the transitions between from and to, oldest first, and the
// last one before from (the state the chart starts in), if any.
func (s *Series) Marks(from, to time.Time) (before *Mark, in []Mark) {
	f, t := from.UnixMilli(), to.UnixMilli()
	for _, k := range s.marks.all() {
		switch {
		case k.At < f:
			k := k
			before = &k
		case k.At <= t:
			in = append(in, k)
		}
	}
	return before, in
}
