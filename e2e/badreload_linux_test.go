package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/labdaemon"
	"github.com/vishvananda/netlink"
)

// kernelState is every route (all tables) and rule of the router, as text.
func kernelState(t *testing.T, r *labdaemon.Reachd) []string {
	t.Helper()
	h := r.Top.Router.Handle()
	var out []string
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := h.RouteListFiltered(fam, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range routes {
			out = append(out, fmt.Sprintf("route table %d dst %v gw %v dev %d type %d", rt.Table, rt.Dst, rt.Gw, rt.LinkIndex, rt.Type))
		}
		rules, err := h.RuleList(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, ru := range rules {
			out = append(out, fmt.Sprintf("rule prio %d mark %#x table %d", ru.Priority, ru.Mark, ru.Table))
		}
	}
	sort.Strings(out)
	return out
}

// TestBadConfigReloads reloads a running daemon with every config of the
// bad-config corpus (internal/config/testdata/bad): each reload is refused
// with exactly the corpus's errors, and neither the running config nor the
// kernel (routes of every table, rules) changes.
func TestBadConfigReloads(t *testing.T) {
	r := setup(t, hosts[0], labdaemon.Options{})
	bb := labdaemon.Via(r.Top.ISP1, false)
	if _, err := r.WaitRoute(false, bb, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before, err := r.Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kernel := kernelState(t, r)
	files, _ := filepath.Glob("../internal/config/testdata/bad/*.yaml")
	if len(files) < 40 {
		t.Fatalf("corpus has %d files", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, line := range strings.Split(string(data), "\n") {
			if w, ok := strings.CutPrefix(line, "# want: "); ok {
				want = append(want, r.Config+":"+w)
			}
		}
		if err := os.WriteFile(r.Config, data, 0o644); err != nil {
			t.Fatal(err)
		}
		err = r.Client.Reload(ctx)
		if err == nil {
			t.Errorf("%s: reload accepted", filepath.Base(f))
			continue
		}
		if d := cmp.Diff(strings.Join(want, "\n"), reloadErrorText(err.Error(), r.Config)); d != "" {
			t.Errorf("%s: reload error (-want +got):\n%s", filepath.Base(f), d)
		}
	}
	os.WriteFile(r.Config, good, 0o644)
	after, err := r.Client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Services) != len(before.Services) || after.Config != before.Config {
		t.Errorf("running config changed: %+v → %+v", before, after)
	}
	for i, s := range after.Services {
		b := before.Services[i]
		if s.Name != b.Name || len(s.Paths) != len(b.Paths) || *s.CurrentPath != *b.CurrentPath {
			t.Errorf("service %d changed: %+v → %+v", i, b, s)
		}
		for j, p := range s.Paths {
			if p.Name != b.Paths[j].Name || p.State != b.Paths[j].State || p.Attempts < b.Paths[j].Attempts {
				t.Errorf("path %s changed: %+v → %+v", p.Name, b.Paths[j], p)
			}
		}
	}
	if d := cmp.Diff(kernel, kernelState(t, r)); d != "" {
		t.Errorf("kernel changed by refused reloads (-before +after):\n%s", d)
	}
	if got := r.Route(false); got != bb {
		t.Errorf("route %q, want %q", got, bb)
	}
	// The good config still reloads.
	if err := r.Client.Reload(ctx); err != nil {
		t.Errorf("good config refused after the corpus: %v", err)
	}
	t.Logf("%d bad configs refused; config, routes (%d) and rules unchanged", len(files), len(kernel))
}

// reloadErrorText strips what the API and client put before the config
// errors ("bad request: ..."): they start with the config file's name.
func reloadErrorText(s, file string) string {
	if i := strings.Index(s, file+":"); i > 0 {
		return s[i:]
	}
	return s
}
