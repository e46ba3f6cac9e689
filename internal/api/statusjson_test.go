package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
)

// fill sets every field of the struct v points to a value that is not
// the zero value, so a field added to apitype.Target that encodeStatus
// does not write makes TestEncodeStatusLikeEncodingJSON fail.
func fill(t *testing.T, v any, i int) {
	rv := reflect.ValueOf(v).Elem()
	for f := 0; f < rv.NumField(); f++ {
		fv := rv.Field(f)
		switch fv.Kind() {
		case reflect.String:
			fv.SetString(fmt.Sprintf("s%d-%d", i, f))
		case reflect.Uint, reflect.Uint64, reflect.Uint32:
			fv.SetUint(uint64(1000*i + f + 1))
		case reflect.Int, reflect.Int64, reflect.Int32:
			fv.SetInt(int64(-1000*i - f - 1))
		case reflect.Bool:
			fv.SetBool(true)
		case reflect.Pointer:
			if fv.Type() == reflect.TypeOf(&time.Time{}) {
				at := time.Date(2026, 12, 5, 10, 0, i, 123456789, time.FixedZone("x", 3600))
				fv.Set(reflect.ValueOf(&at))
				continue
			}
			t.Fatalf("apitype.Target.%s: a pointer to %v; teach encodeStatus and this test", rv.Type().Field(f).Name, fv.Type().Elem())
		default:
			t.Fatalf("apitype.Target.%s: kind %v; teach encodeStatus and this test", rv.Type().Field(f).Name, fv.Kind())
		}
	}
}

// encodeStatus writes what json.Encoder.Encode writes, byte for byte.
func TestEncodeStatusLikeEncodingJSON(t *testing.T) {
	mk := func(n int, weird bool) []apitype.Target {
		if n < 0 {
			return nil
		}
		ts := make([]apitype.Target, n)
		for i := range ts {
			fill(t, &ts[i], i)
			if i%3 == 0 {
				ts[i].LastAttempt = nil
			}
			if weird && i%2 == 0 {
				ts[i].Reason = fmt.Sprintf("<%d> \"quoted\" & \\ \n\t\u2028 \xff é \"targets\":null", i)
				ts[i].Address = "fe80::1%e<0>"
			}
			if i%4 == 1 {
				ts[i].Reason = "answered" // repeats: encoded once
			}
		}
		return ts
	}
	cur := "p1"
	st := apitype.Status{Version: "v<1>", Started: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC), Config: "/etc/reachd \"x\".yaml",
		Services: []apitype.Service{
			{Name: "a", CurrentPath: &cur, Decided: true, Selection: "hunt", Paths: []apitype.Path{
				{Name: "p1", State: "up", Reason: `"targets":null`, Targets: mk(3, true)},
				{Name: "p2", Targets: mk(-1, false)},
				{Name: "p3", Targets: mk(0, false), Dampening: &apitype.Dampening{Penalty: 3}},
			}},
			{Name: "b", Selection: "ecmp", UsablePaths: []string{"q"}, Paths: []apitype.Path{
				{Name: "q", Weight: 2, Targets: mk(2*StatusYieldEvery+7, false)},
			}},
			{Name: "c"},
		}}
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(st); err != nil {
		t.Fatal(err)
	}
	got, err := encodeStatus(nil, &st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		for i := range min(len(got), want.Len()) {
			if got[i] != want.Bytes()[i] {
				t.Fatalf("differs at byte %d:\n got …%s\nwant …%s", i, got[max(0, i-80):min(len(got), i+80)], want.Bytes()[max(0, i-80):min(want.Len(), i+80)])
			}
		}
		t.Fatalf("lengths differ: got %d, want %d bytes", len(got), want.Len())
	}
	if st.Services[0].Paths[0].Targets == nil {
		t.Error("encodeStatus changed the status it encoded")
	}
	// Into an earlier answer's buffer, big enough or not: the same bytes,
	// and the big one reused.
	for _, dst := range [][]byte{bytes.Repeat([]byte("x"), 4*len(got)), []byte("xyz")} {
		again, err := encodeStatus(dst, &st)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("into a buffer of %d bytes: %d bytes, err %v; want the %d bytes of a fresh encoding", len(dst), len(again), err, len(got))
		}
		if cap(dst) == 4*len(got) && &again[0] != &dst[0] {
			t.Error("a big enough buffer was not reused")
		}
	}
}

// A 10,000-target status, against encoding/json (go test -bench EncodeStatus ./internal/api).
func BenchmarkEncodeStatus(b *testing.B) {
	at := time.Now()
	ts := make([]apitype.Target, 10000)
	for i := range ts {
		ts[i] = apitype.Target{Address: fmt.Sprintf("2001:db8:100::%x", i), State: "up", Attempts: 123456, LastAttempt: &at, LastRTT: 51234, Reason: "answered"}
	}
	st := apitype.Status{Services: []apitype.Service{{Name: "bench", Paths: []apitype.Path{{Name: "p0", Targets: ts}}}}}
	b.Run("encodeStatus", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeStatus(nil, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encodeStatus into the last answer's buffer", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = encodeStatus(buf, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			if err := json.NewEncoder(&buf).Encode(&st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A time encoding/json refuses (year 10000) fails encodeStatus too; an
// offset with seconds encodes as encoding/json writes it.
func TestEncodeStatusTimes(t *testing.T) {
	odd := time.Date(2026, 12, 5, 10, 0, 0, 5, time.FixedZone("odd", 3600+30))
	st := apitype.Status{Services: []apitype.Service{{Name: "a", Paths: []apitype.Path{{Name: "p", Targets: []apitype.Target{{LastAttempt: &odd}}}}}}}
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(st); err != nil {
		t.Fatal(err)
	}
	if got, err := encodeStatus(nil, &st); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("got %s, %v; want %s", got, err, want.Bytes())
	}
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	st.Services[0].Paths[0].Targets[0].LastAttempt = &far
	if _, err := encodeStatus(nil, &st); err == nil {
		t.Error("year 10000 encoded; encoding/json refuses it")
	}
}

// A status without targets (beyond 1,000 targets, by default) is what
// encoding/json writes, and goes into the buffer it is given when that is
// big enough: no buffer of its own, no copy of the paths.
func TestEncodeStatusWithoutTargets(t *testing.T) {
	at := time.Date(2026, 12, 6, 2, 30, 0, 0, time.UTC)
	st := apitype.Status{Version: "v", Config: "c", TargetsOmitted: true, Services: []apitype.Service{
		{Name: "internet", Paths: []apitype.Path{
			{Name: "a", State: "up", TargetCount: 1000, Attempts: 5, LastAttempt: &at, Reason: `say "hi"`},
			{Name: "b", State: "down", TargetCount: 2, Targets: []apitype.Target{}},
		}},
		{Name: "empty"},
	}}
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(&st); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 4096)
	got, err := encodeStatus(dst, &st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("encodeStatus:\n%s\nencoding/json:\n%s", got, want.Bytes())
	}
	if &got[0] != &dst[:1][0] {
		t.Error("the status was not written into the buffer given")
	}
}

// BenchmarkEncodeStatusPaths is a status of 10 paths without targets, as
// /v1/status answers beyond 1,000 targets.
func BenchmarkEncodeStatusPaths(b *testing.B) {
	at := time.Now()
	var ps []apitype.Path
	for i := range 10 {
		ps = append(ps, apitype.Path{Name: fmt.Sprintf("p%d", i), State: "up", Probed: "up", Override: "auto", TargetCount: 1000,
			Attempts: 123456, LastAttempt: &at, LastChange: &at, LastRTT: 51234, Reason: "first answer"})
	}
	st := apitype.Status{TargetsOmitted: true, Services: []apitype.Service{{Name: "bench", Paths: ps}}}
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = encodeStatus(buf, &st); err != nil {
			b.Fatal(err)
		}
	}
}
