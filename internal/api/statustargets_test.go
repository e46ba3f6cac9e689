package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reachd/reachd/internal/apitype"
)

// targetsBackend is a daemon probing n targets on one path, split over
// two paths; with paths it also builds statuses without the targets
// (PathStatuser), counting each kind of build.
type targetsBackend struct {
	fakeBackend
	n           int
	full, slim  atomic.Int64
	withoutPath bool // no StatusPaths: the API strips the targets itself
}

func (b *targetsBackend) status(targets bool) apitype.Status {
	st := apitype.Status{Config: "c"}
	svc := apitype.Service{Name: "internet"}
	for i, name := range []string{"broadband", "lte"} {
		p := apitype.Path{Name: name, TargetCount: b.n / 2}
		if i == 0 {
			p.TargetCount += b.n % 2
		}
		p.Attempts = uint64(p.TargetCount) * 3
		if targets {
			for k := range p.TargetCount {
				p.Targets = append(p.Targets, apitype.Target{Address: fmt.Sprintf("192.0.2.%d", k%250), State: "up", Attempts: 3})
			}
		}
		svc.Paths = append(svc.Paths, p)
	}
	st.Services = []apitype.Service{svc}
	return st
}

func (b *targetsBackend) Status(ctx context.Context) (apitype.Status, error) {
	b.full.Add(1)
	st := b.status(true)
	if b.withoutPath {
		// A backend that does not set the counts: the API does.
		for j := range st.Services[0].Paths {
			st.Services[0].Paths[j].TargetCount = 0
		}
	}
	return st, nil
}

// pathStatusBackend adds StatusPaths to targetsBackend.
type pathStatusBackend struct{ *targetsBackend }

func (b pathStatusBackend) StatusPaths(ctx context.Context) (apitype.Status, error) {
	b.slim.Add(1)
	return b.status(false), nil
}

func getStatus(t *testing.T, s *Server, query string) (apitype.Status, *httptest.ResponseRecorder) {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/v1/status"+query, nil))
	var st apitype.Status
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	return st, w
}

// targetsIn returns how many targets the answer lists and how many its
// paths say they probe.
func targetsIn(st apitype.Status) (listed, counted int) {
	for _, s := range st.Services {
		for _, p := range s.Paths {
			listed += len(p.Targets)
			counted += p.TargetCount
		}
	}
	return listed, counted
}

// The status lists every target while the daemon probes at most
// StatusTargetLimit of them, and beyond that only when asked
// (?targets=all); ?targets=none leaves them out at any size. Without the
// targets each path still says how many it probes, the answer says they
// were left out, and a daemon that can build a status without them is
// asked for that instead of for all of them.
func TestStatusTargets(t *testing.T) {
	for _, tc := range []struct {
		n           int
		withoutPath bool
	}{
		{apitype.StatusTargetLimit, false},
		{apitype.StatusTargetLimit + 1, false},
		{apitype.StatusTargetLimit, true},
		{apitype.StatusTargetLimit + 1, true},
		{3, false},
	} {
		t.Run(fmt.Sprintf("%d targets, StatusPaths %v", tc.n, !tc.withoutPath), func(t *testing.T) {
			tb := &targetsBackend{n: tc.n, withoutPath: tc.withoutPath}
			var s *Server
			if tc.withoutPath {
				s = New(tb)
			} else {
				s = New(pathStatusBackend{tb})
			}
			over := tc.n > apitype.StatusTargetLimit
			for _, q := range []string{"", "", "?targets=auto", "?targets=all", "?targets=none", ""} {
				full0, slim0 := tb.full.Load(), tb.slim.Load()
				st, w := getStatus(t, s, q)
				if w.Code != http.StatusOK {
					t.Fatalf("%q: %d %s", q, w.Code, w.Body)
				}
				listed, counted := targetsIn(st)
				wantAll := q == "?targets=all" || (q != "?targets=none" && !over)
				if counted != tc.n {
					t.Errorf("%q: paths say %d targets, want %d", q, counted, tc.n)
				}
				if wantAll && (listed != tc.n || st.TargetsOmitted) {
					t.Errorf("%q: %d targets listed (omitted %v), want all %d", q, listed, st.TargetsOmitted, tc.n)
				}
				if !wantAll {
					if listed != 0 || !st.TargetsOmitted || strings.Contains(w.Body.String(), "192.0.2.") {
						t.Errorf("%q: %d targets listed (omitted %v), want none and targets-omitted", q, listed, st.TargetsOmitted)
					}
					if !strings.Contains(w.Body.String(), `"targets-omitted":true`) {
						t.Errorf("%q: the answer does not say the targets were left out", q)
					}
				}
				if st.Services[0].Paths[0].Attempts != uint64(st.Services[0].Paths[0].TargetCount)*3 {
					t.Errorf("%q: path counters %+v", q, st.Services[0].Paths[0])
				}
				// Without the targets, a backend that has StatusPaths is
				// never asked for them (past the first request, which
				// counts them).
				full, slim := tb.full.Load()-full0, tb.slim.Load()-slim0
				first := full0+slim0 == 0
				switch {
				case tc.withoutPath:
				case !wantAll && !first && (full != 0 || slim != 1):
					t.Errorf("%q: %d builds with targets and %d without; want only one without", q, full, slim)
				case wantAll && (full != 1 || slim != 0):
					t.Errorf("%q: %d builds with targets and %d without; want only one with", q, full, slim)
				}
			}
		})
	}
}

// A targets value that means nothing is the caller's mistake: 400, saying
// what to ask for.
func TestStatusTargetsBadValue(t *testing.T) {
	tb := &targetsBackend{n: 4}
	s := New(pathStatusBackend{tb})
	_, w := getStatus(t, s, "?targets=some")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "use all, none or auto") {
		t.Errorf("targets=some: %d %s", w.Code, w.Body)
	}
	if tb.full.Load()+tb.slim.Load() != 0 {
		t.Error("a bad request built a status")
	}
}
