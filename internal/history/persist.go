package history

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
)

// The state file: a magic, the levels (a file written with other levels is
// refused rather than misread), then per series its key, per level its
// non-empty buckets (the open one included, so a restart loses nothing of
// the current interval) and its marks. Little-endian throughout.
var magic = [8]byte{'R', 'D', 'H', 'I', 'S', 'T', '0', '2'}

// ErrLevels marks a state file written with other levels.
var ErrLevels = errors.New("history file has other ring sizes")

// Save writes every series to w.
func (st *Store) Save(w io.Writer) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	bw := bufio.NewWriter(w)
	e := encoder{w: bw}
	e.bytes(magic[:])
	e.u32(uint32(len(st.levels)))
	for _, l := range st.levels {
		e.u64(uint64(l.Step))
		e.u32(uint32(l.Len))
	}
	keys := make([]string, 0, len(st.series))
	for k := range st.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.u32(uint32(len(keys)))
	for _, k := range keys {
		s := st.series[k]
		e.str(k)
		for _, r := range s.levels {
			var bs []Bucket
			for _, b := range r.buckets {
				if b.Idx != 0 && b.Sent > 0 && int64(b.Idx) != r.openIdx {
					bs = append(bs, b)
				}
			}
			if r.sent > 0 {
				bs = append(bs, r.peek())
			}
			e.u32(uint32(len(bs)))
			for _, b := range bs {
				e.u32(uint32(b.Idx))
				e.u32(b.Sent)
				e.u32(b.Lost)
				for _, q := range b.Q {
					e.u32(math.Float32bits(q))
				}
			}
		}
		ms := s.marks.all()
		e.u32(uint32(len(ms)))
		for _, m := range ms {
			e.u64(uint64(m.At))
			e.str(m.State)
		}
	}
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

// Load replaces the store's series with those read from r. On error the
// store is left empty.
func (st *Store) Load(r io.Reader) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.series = map[string]*Series{}
	d := decoder{r: bufio.NewReader(r)}
	var m [8]byte
	d.read(m[:])
	if d.err == nil && m != magic {
		return errors.New("not a reachd history file")
	}
	if n := d.u32(); d.err == nil && int(n) != len(st.levels) {
		return ErrLevels
	}
	for _, l := range st.levels {
		step, n := d.u64(), d.u32()
		if d.err == nil && (step != uint64(l.Step) || int(n) != l.Len) {
			return ErrLevels
		}
	}
	n := d.u32()
	if d.err == nil && int(n) > st.max {
		return fmt.Errorf("history file has %d series, more than the %d kept", n, st.max)
	}
	series := map[string]*Series{}
	for i := 0; i < int(n) && d.err == nil; i++ {
		k := d.str()
		s := NewSeries(st.levels)
		for _, r := range s.levels {
			nb := d.u32()
			if int(nb) > len(r.buckets)+1 {
				return fmt.Errorf("series %q: %d buckets in a ring of %d", k, nb, len(r.buckets))
			}
			for j := 0; j < int(nb) && d.err == nil; j++ {
				var b Bucket
				b.Idx = int32(d.u32())
				b.Sent, b.Lost = d.u32(), d.u32()
				for q := range b.Q {
					b.Q[q] = math.Float32frombits(d.u32())
				}
				if b.Lost > b.Sent || b.Idx <= 0 {
					return fmt.Errorf("series %q: bad bucket", k)
				}
				r.restore(b)
			}
		}
		nm := d.u32()
		if nm > maxMarks {
			return fmt.Errorf("series %q: %d marks, at most %d", k, nm, maxMarks)
		}
		for j := 0; j < int(nm) && d.err == nil; j++ {
			at := int64(d.u64())
			s.marks.add(Mark{At: at, State: d.str()})
		}
		series[k] = s
	}
	if d.err != nil {
		return fmt.Errorf("reading history: %w", d.err)
	}
	st.series = series
	return nil
}

// restore puts a saved bucket back. The newest bucket of a level becomes
// its open interval again, so new probes in the same interval add to it.
func (r *ring) restore(b Bucket) {
	if int64(b.Idx) > r.openIdx {
		if r.openIdx != 0 && r.sent > 0 {
			r.close()
		}
		r.reset(int64(b.Idx))
		r.merge(b)
		return
	}
	r.buckets[slot(int64(b.Idx), len(r.buckets))] = b
}

type encoder struct {
	w   *bufio.Writer
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.buf[:4], v); e.bytes(e.buf[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.buf[:8], v); e.bytes(e.buf[:8]) }
func (e *encoder) str(s string) {
	if len(s) > math.MaxUint16 {
		s = s[:math.MaxUint16]
	}
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], uint16(len(s)))
	e.bytes(b[:])
	e.bytes([]byte(s))
}

type decoder struct {
	r   *bufio.Reader
	err error
	buf [8]byte
}

func (d *decoder) read(b []byte) {
	if d.err == nil {
		_, d.err = io.ReadFull(d.r, b)
	}
}
func (d *decoder) u32() uint32 {
	d.read(d.buf[:4])
	if d.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(d.buf[:4])
}
func (d *decoder) u64() uint64 {
	d.read(d.buf[:8])
	if d.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint64(d.buf[:8])
}
func (d *decoder) str() string {
	d.read(d.buf[:2])
	if d.err != nil {
		return ""
	}
	b := make([]byte, binary.LittleEndian.Uint16(d.buf[:2]))
	d.read(b)
	return string(b)
}
