package engine

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/monitor"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/probe"
)

// forgetRecorder is an Observer that keeps what it was told to forget.
type forgetRecorder struct {
	mu     sync.Mutex
	forgot []string
}

func (f *forgetRecorder) Attempt(string, string, netip.Addr, probe.Result) {}
func (f *forgetRecorder) PathState(string, string, monitor.State)          {}
func (f *forgetRecorder) Transition(string, string, monitor.Transition)    {}
func (f *forgetRecorder) Decision(string, policy.Decision, map[string]int) {}
func (f *forgetRecorder) ForgetPath(service, path string)                  { f.add("path " + service + "/" + path) }
func (f *forgetRecorder) ForgetTarget(service, path string, a netip.Addr) {
	f.add("target " + service + "/" + path + " " + a.String())
}
func (f *forgetRecorder) add(s string) { f.mu.Lock(); f.forgot = append(f.forgot, s); f.mu.Unlock() }
func (f *forgetRecorder) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forgot)
}

// A reload tells the observers which paths and targets went away, so that
// their metric series do not stay behind.
func TestReloadForgetsRemovedPathsAndTargets(t *testing.T) {
	fr := &forgetRecorder{}
	f := startOpts(t, testConfig, Options{Observers: []Observer{fr}}, "203.0.113.8", "203.0.113.9")
	// lte goes; broadband swaps its target.
	next := strings.Replace(testConfig, "probe-address: [203.0.113.8]", "probe-address: [203.0.113.10]", 1)
	next = next[:strings.Index(next, "      - name: lte")]
	cfg, err := config.Parse("test.yaml", []byte(next))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.eng.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	got := fr.get()
	slices.Sort(got)
	want := []string{"path internet/lte", "target internet/broadband 203.0.113.8"}
	if !slices.Equal(got, want) {
		t.Errorf("forgot %q, want %q", got, want)
	}
}
