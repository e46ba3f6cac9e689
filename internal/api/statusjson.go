package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// encodeStatus is json.NewEncoder(&buf).Encode(st), byte for byte, written
// so that a big status does not hold a Go processor for milliseconds: the
// targets (nearly all of a big status: 10,000 of them are 1.6 MB) are
// written by hand, yielding to the scheduler every StatusYieldEvery of them, and
// the rest by encoding/json. One build of 10,000 targets with
// encoding/json ran up to 18 ms without a scheduling point; a probe whose
// timer came due meanwhile on the same processor waited for the end of it
// (Go runs a processor's timers when that processor schedules). Yielding
// inside a MarshalJSON instead cost three times the CPU, because
// encoding/json validates what a MarshalJSON returns.
//
// It appends to dst[:0] (a buffer of an earlier status, or nil), so that a
// daemon answering many requests reuses its buffers instead of making
// garbage: 10,000 targets made the collector run fifteen times a second
// under the bench's API load, and its workers delay the probes' timers.
func encodeStatus(dst []byte, st *apitype.Status) ([]byte, error) {
	n := 0
	for _, s := range st.Services {
		for _, p := range s.Paths {
			n += len(p.Targets)
		}
	}
	if n == 0 {
		// No targets (a status without them: beyond 1,000 targets by
		// default): encoding/json writes it all, into dst.
		out := bytes.NewBuffer(dst[:0])
		if err := json.NewEncoder(out).Encode(st); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	// The status with every path's targets left out, then each path's
	// "targets":null replaced by its targets.
	bare := *st
	if st.Services != nil {
		bare.Services = make([]apitype.Service, len(st.Services))
	}
	for i, s := range st.Services {
		bare.Services[i] = s
		if s.Paths == nil {
			continue
		}
		bare.Services[i].Paths = make([]apitype.Path, len(s.Paths))
		for j, p := range s.Paths {
			p.Targets = nil
			bare.Services[i].Paths[j] = p
		}
	}
	var skel bytes.Buffer
	if err := json.NewEncoder(&skel).Encode(&bare); err != nil {
		return nil, err
	}
	out := dst[:0]
	// Most targets take 160-170 bytes; growing a 1.6 MB buffer by
	// doubling makes as much garbage again.
	if want := skel.Len() + 176*n; cap(out) < want {
		out = make([]byte, 0, want)
	}
	rest := skel.Bytes()
	w := targetWriter{}
	for _, s := range st.Services {
		for _, p := range s.Paths {
			// Each path's object has its own "targets" key, in path order;
			// a string can hold no unescaped quote, so this key is the
			// next such text.
			k := bytes.Index(rest, targetsNull)
			if k < 0 {
				return nil, errNoTargetsKey
			}
			out = append(out, rest[:k+len(targetsKey)]...)
			rest = rest[k+len(targetsNull):]
			var err error
			if out, err = w.appendTargets(out, p.Targets); err != nil {
				return nil, err
			}
		}
	}
	return append(out, rest...), nil
}

var (
	targetsKey      = []byte(`"targets":`)
	targetsNull     = []byte(`"targets":null`)
	errNoTargetsKey = errors.New("status encoding: a path without its targets key")
)

// StatusYieldEvery is how many targets a status build handles between two
// yields to the Go scheduler, here in the encoding and in the backend's
// conversion (internal/daemon): about a tenth of a millisecond of work, so
// that a probe whose timer comes due on the same processor does not wait
// for all of a 10,000-target build.
const StatusYieldEvery = 256

// targetWriter writes targets; it counts them across paths for the yields
// and remembers the encoding of strings that repeat (states, reasons).
type targetWriter struct {
	n     int
	known map[string][]byte
}

func (w *targetWriter) appendTargets(b []byte, ts []apitype.Target) ([]byte, error) {
	if ts == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i := range ts {
		if w.n++; w.n%StatusYieldEvery == 0 {
			runtime.Gosched()
		}
		if i > 0 {
			b = append(b, ',')
		}
		t := &ts[i]
		b = append(b, `{"address":`...)
		b = appendString(b, t.Address)
		b = append(b, `,"state":`...)
		b = w.appendKnown(b, t.State)
		b = append(b, `,"attempts":`...)
		b = strconv.AppendUint(b, t.Attempts, 10)
		b = append(b, `,"losses":`...)
		b = strconv.AppendUint(b, t.Losses, 10)
		b = append(b, `,"last-attempt":`...)
		if t.LastAttempt == nil {
			b = append(b, "null"...)
		} else {
			var err error
			if b, err = appendTime(b, *t.LastAttempt); err != nil {
				return nil, err
			}
		}
		b = append(b, `,"last-rtt-ns":`...)
		b = strconv.AppendInt(b, int64(t.LastRTT), 10)
		b = append(b, `,"reason":`...)
		b = w.appendKnown(b, t.Reason)
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendTime appends t as its MarshalJSON does, without allocating in the
// common case (MarshalJSON refuses years outside 0-9999 and offsets that
// are not whole minutes within a day; those go through it).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		e, err := t.MarshalJSON()
		return append(b, e...), err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendKnown is appendString for strings that repeat: each is encoded
// once per status.
func (w *targetWriter) appendKnown(b []byte, s string) []byte {
	if e, ok := w.known[s]; ok {
		return append(b, e...)
	}
	if w.known == nil {
		w.known = map[string][]byte{}
	}
	e := appendString(nil, s)
	if len(w.known) < 1024 {
		w.known[s] = e
	}
	return append(b, e...)
}

// appendString appends s as encoding/json writes a string: as it is when
// every byte is printable ASCII that needs no escape, and through
// encoding/json otherwise (escapes, HTML-safe <, >, &, invalid UTF-8).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			e, _ := json.Marshal(s) // a string always encodes
			return append(b, e...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
