package history

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func TestIntervalsAndQuantiles(t *testing.T) {
	s := NewSeries(DefaultLevels)
	// 10 s from t0: RTTs 1..100 ms, no loss. Minute 1: 10 probes, 5 lost, RTT 20 ms.
	for i := 1; i <= 100; i++ {
		s.Add(t0.Add(time.Duration(i)*99*time.Millisecond), true, ms(float64(i)))
	}
	for i := 0; i < 10; i++ {
		s.Add(t0.Add(time.Minute+time.Duration(i)*time.Second), i%2 == 0, ms(20))
	}
	now := t0.Add(2*time.Minute + time.Second)
	s.Flush(now)
	step, pts := s.Points(now, now.Add(-10*time.Minute), now)
	if step != 10*time.Second || len(pts) != 2 {
		t.Fatalf("step %v, %d points, want 10s and 2", step, len(pts))
	}
	want := [NQ]float32{1, 10.9, 25.75, 50.5, 75.25, 90.1, 100}
	for i := range want {
		if math.Abs(float64(pts[0].Q[i]-want[i])) > 1e-3 {
			t.Errorf("quantile %v = %v, want %v", Quantiles[i], pts[0].Q[i], want[i])
		}
	}
	if pts[0].Sent != 100 || pts[0].Lost != 0 || !pts[0].Start(step).Equal(t0) {
		t.Errorf("first 10 s: %+v", pts[0])
	}
	// The minute view: the same probes in 1-minute intervals.
	step, pts = s.Points(now, t0.Add(-time.Hour), now)
	if step != time.Minute || len(pts) != 2 {
		t.Fatalf("step %v, %d points, want 1m and 2", step, len(pts))
	}
	if pts[0].Sent != 100 || pts[0].Lost != 0 || pts[0].Q[Median] != 50.5 || !pts[0].Start(step).Equal(t0) {
		t.Errorf("minute 0: %+v", pts[0])
	}
	if pts[1].Sent != 10 || pts[1].Lost != 5 || pts[1].Q[Median] != 20 || pts[1].LossRatio() != 0.5 {
		t.Errorf("minute 1: %+v", pts[1])
	}
}

// TestOpenFinerDataShows: a coarse view includes what finer levels hold
// for intervals that are still open (the last seconds of a 3-hour chart).
func TestOpenFinerDataShows(t *testing.T) {
	s := NewSeries(DefaultLevels)
	for i := 0; i < 25; i++ { // 25 s: two closed 10 s buckets and an open one
		s.Add(t0.Add(time.Duration(i)*time.Second), true, ms(4))
	}
	now := t0.Add(25 * time.Second)
	for _, from := range []time.Time{now.Add(-time.Hour), now.Add(-24 * time.Hour), now.Add(-30 * 24 * time.Hour)} {
		_, pts := s.Points(now, from, now)
		if len(pts) != 1 || pts[0].Sent != 25 || pts[0].Q[Median] != 4 {
			t.Fatalf("from %v: %+v", now.Sub(from), pts)
		}
	}
}

func TestAllLostIsNaN(t *testing.T) {
	s := NewSeries(DefaultLevels)
	s.Add(t0, false, 0)
	s.Flush(t0.Add(time.Minute))
	b, ok := s.Last(time.Minute)
	if !ok || b.Sent != 1 || b.Lost != 1 || !isNaN32(b.Q[Median]) {
		t.Fatalf("got %+v %v", b, ok)
	}
}

func TestOpenBucketIsShown(t *testing.T) {
	s := NewSeries(DefaultLevels)
	s.Add(t0.Add(time.Second), true, ms(5))
	s.Add(t0.Add(2*time.Second), true, ms(7))
	_, pts := s.Points(t0.Add(3*time.Second), t0.Add(-time.Hour), t0.Add(3*time.Second))
	if len(pts) != 1 || pts[0].Sent != 2 || pts[0].Q[Median] != 6 {
		t.Fatalf("got %+v", pts)
	}
	// Peeking must not disturb the open interval.
	s.Add(t0.Add(3*time.Second), true, ms(9))
	_, pts = s.Points(t0.Add(4*time.Second), t0.Add(-time.Hour), t0.Add(4*time.Second))
	if len(pts) != 1 || pts[0].Sent != 3 || pts[0].Q[Median] != 7 {
		t.Fatalf("after another probe: %+v", pts)
	}
}

func TestCoarseLevelsConsolidate(t *testing.T) {
	s := NewSeries(DefaultLevels)
	// Five minutes: minute m has 10 probes of (m+1)×10 ms, one lost in minute 4.
	for m := 0; m < 5; m++ {
		for i := 0; i < 10; i++ {
			s.Add(t0.Add(time.Duration(m)*time.Minute+time.Duration(i)*time.Second), !(m == 4 && i == 0), ms(float64(m+1)*10))
		}
	}
	now := t0.Add(5*time.Minute + time.Second)
	s.Flush(now)
	// A range older than 3 h must come from the 5-minute ring.
	step, pts := s.Points(now.Add(4*time.Hour), t0.Add(-time.Hour), now)
	if step != 5*time.Minute || len(pts) != 1 {
		t.Fatalf("step %v, %d points", step, len(pts))
	}
	b := pts[0]
	// Weighted by answered probes: (10+20+30+40)×10 + 50×9 over 49.
	wantMed := float32((100.0+200+300+400+450)/49.0) * 1
	if b.Sent != 50 || b.Lost != 1 || math.Abs(float64(b.Q[Median]-wantMed)) > 1e-3 || b.Q[0] != 10 || b.Q[NQ-1] != 50 {
		t.Fatalf("got %+v, want median %v", b, wantMed)
	}
}

func TestRingWrapsAround(t *testing.T) {
	s := NewSeries(DefaultLevels)
	// Four hours of one probe a minute, RTT = minute number.
	for m := 0; m < 240; m++ {
		s.Add(t0.Add(time.Duration(m)*time.Minute), true, ms(float64(m)))
	}
	now := t0.Add(240 * time.Minute)
	s.Flush(now)
	step, pts := s.Points(now, now.Add(-3*time.Hour), now)
	if step != time.Minute || len(pts) != 180 {
		t.Fatalf("step %v, %d points, want 1m and 180", step, len(pts))
	}
	if pts[0].Q[Median] != 60 || pts[179].Q[Median] != 239 {
		t.Fatalf("oldest %v newest %v, want 60 and 239 (the first hour was overwritten)", pts[0].Q[Median], pts[179].Q[Median])
	}
	// The first hour now only exists at 5 minutes.
	step, pts = s.Points(now, t0, t0.Add(time.Hour-time.Second))
	if step != 5*time.Minute || len(pts) != 12 || pts[0].Q[Median] != 2 {
		t.Fatalf("step %v, %d points, first %+v", step, len(pts), pts)
	}
}

func TestMarks(t *testing.T) {
	s := NewSeries(DefaultLevels)
	for i := 0; i < maxMarks+10; i++ {
		s.Mark(t0.Add(time.Duration(i)*time.Second), []string{"up", "down"}[i%2])
	}
	before, in := s.Marks(t0.Add(70*time.Second), t0.Add(72*time.Second))
	if before == nil || before.At != t0.Add(69*time.Second).UnixMilli() || len(in) != 3 {
		t.Fatalf("before %+v, in %+v", before, in)
	}
	_, all := s.Marks(t0.Add(-time.Hour), t0.Add(time.Hour))
	if len(all) != maxMarks || all[0].At != t0.Add(10*time.Second).UnixMilli() {
		t.Fatalf("kept %d marks, first %+v", len(all), all[0])
	}
}

func TestSaveLoad(t *testing.T) {
	st := NewStore(DefaultLevels, 10)
	for m := 0; m < 400; m++ {
		at := t0.Add(time.Duration(m) * 30 * time.Second)
		st.Add("path/internet/broadband", at, m%7 != 0, ms(float64(m%13)))
		st.Add("path/internet/lte", at, true, ms(3))
	}
	st.Mark("path/internet/broadband", t0.Add(time.Minute), "down")
	now := t0.Add(200*time.Minute + 15*time.Second) // an interval is open
	var buf bytes.Buffer
	if err := st.Save(&buf); err != nil {
		t.Fatal(err)
	}
	st2 := NewStore(DefaultLevels, 10)
	if err := st2.Load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, k := range st.Keys() {
		for _, from := range []time.Time{now.Add(-time.Hour), now.Add(-2 * 24 * time.Hour), now.Add(-30 * 24 * time.Hour)} {
			v1, _ := st.Query(k, now, from, now)
			v2, ok := st2.Query(k, now, from, now)
			if !ok {
				t.Fatalf("%s lost", k)
			}
			if d := cmp.Diff(v1, v2, cmp.Comparer(func(a, b float32) bool {
				return a == b || (isNaN32(a) && isNaN32(b)) || math.Abs(float64(a-b)) < 1e-3
			})); d != "" {
				t.Fatalf("%s from %v differs after restore (-before +after):\n%s", k, from, d)
			}
		}
	}
	// The restored open interval keeps counting.
	last := t0.Add(399 * 30 * time.Second)
	st2.Add("path/internet/lte", last.Add(5*time.Second), true, ms(3))
	_, p1 := st.levels0("path/internet/lte", last)
	_, p2 := st2.levels0("path/internet/lte", last)
	if len(p1) != 1 || len(p2) != 1 || p2[0].Sent != p1[0].Sent+1 {
		t.Fatalf("open interval after restore: %+v, before %+v", p2, p1)
	}

	other := NewStore([]Level{{time.Minute, 10}}, 10)
	if err := other.Load(bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrLevels) {
		t.Fatalf("other levels: %v, want ErrLevels", err)
	}
	for _, cut := range []int{0, 5, 30, buf.Len() / 2, buf.Len() - 1} {
		if err := st2.Load(bytes.NewReader(buf.Bytes()[:cut])); err == nil {
			t.Fatalf("truncated at %d: no error", cut)
		}
		if st2.Len() != 0 {
			t.Fatalf("truncated at %d: %d series kept", cut, st2.Len())
		}
	}
}

func FuzzLoad(f *testing.F) {
	st := NewStore(DefaultLevels, 4)
	st.Add("a", t0, true, ms(1))
	st.Mark("a", t0, "up")
	var buf bytes.Buffer
	st.Save(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		st := NewStore(DefaultLevels, 4)
		if err := st.Load(bytes.NewReader(data)); err != nil {
			return
		}
		for _, k := range st.Keys() {
			st.Query(k, t0, t0.Add(-time.Hour), t0)
			st.Add(k, t0, true, ms(1))
		}
	})
}

// TestMemoryBounded1000Targets runs 1,000 series through a simulated day
// (one probe every 30 s each) and checks that the heap after the day is
// what the rings cost after the first hour: memory is allocated when a
// series is created and does not grow with time.
func TestMemoryBounded1000Targets(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated day skipped in -short")
	}
	const targets = 1000
	st := NewStore(DefaultLevels, targets)
	keys := make([]string, targets)
	for i := range keys {
		keys[i] = "path/svc/p" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	var afterHour uint64
	every := 30
	if raceEnabled {
		every = 300 // the race detector is ~50 times slower; the rings are the same
	}
	for sec := 0; sec < 24*3600; sec += every {
		at := t0.Add(time.Duration(sec) * time.Second)
		for i, k := range keys {
			st.Add(k, at, (sec/every+i)%50 != 0, ms(float64(10+i%20)))
		}
		if sec == 3600 {
			afterHour = heap()
		}
	}
	st.Flush(t0.Add(24 * time.Hour))
	afterDay := heap()
	runtime.KeepAlive(st)
	perSeries := (afterDay - base) / targets
	t.Logf("1,000 series over a simulated day: %.1f MiB (%d bytes a series); after the first hour %.1f MiB",
		float64(afterDay-base)/(1<<20), perSeries, float64(afterHour-base)/(1<<20))
	if afterDay > afterHour+afterHour/20 {
		t.Errorf("heap grew from %d after an hour to %d after a day", afterHour, afterDay)
	}
	// The rings' size: 1,430 buckets of 40 bytes, plus the sample reservoir.
	if perSeries > 64<<10 {
		t.Errorf("%d bytes a series, want at most 64 KiB", perSeries)
	}
}

// levels0 returns the finest level's bucket of at's interval.
func (st *Store) levels0(key string, at time.Time) (time.Duration, []Bucket) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.series[key].Points(at, at, at)
}
