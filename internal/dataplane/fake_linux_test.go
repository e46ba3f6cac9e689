package dataplane

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fakeKernel stands in for the kernel behind the data plane's interfaces
// (netlinker, nftPlane, conntracker, and a /proc/sys tree for sysctls). It
// holds rules and routes as the kernel would, so the plane's
// read-then-write logic runs as it does against the kernel, and it records
// every change, in order, as one line each.
type fakeKernel struct {
	changes []string
	links   map[string]int
	rules   []netlink.Rule
	routes  []netlink.Route

	// nftables, in the plane's terms: the per-path rules by mark, and the
	// stamping and spreading rules by service.
	nftPaths  map[uint32]string
	nftStamp  map[string]string
	nftSpread map[string]string

	// pinned is what countMarks reports (conntrack entries by mark).
	pinned map[uint32]int

	// procSys is a /proc/sys tree; sysctls are recorded by comparing it
	// (and the saved originals) before and after each step.
	procSys  string
	stateDir string
	lastSys  map[string]string
}

func newFakeKernel(t *testing.T, links ...string) *fakeKernel {
	k := &fakeKernel{links: map[string]int{}, nftPaths: map[uint32]string{}, nftStamp: map[string]string{},
		nftSpread: map[string]string{}, procSys: t.TempDir(), stateDir: t.TempDir()}
	sys := map[string]string{"net/ipv4/conf/all/rp_filter": "2", "net/ipv4/conf/all/src_valid_mark": "0"}
	for i, l := range links {
		k.links[l] = i + 2
		sys["net/ipv4/conf/"+l+"/rp_filter"] = "2"
		sys["net/ipv4/conf/"+l+"/src_valid_mark"] = "0"
	}
	for key, v := range sys {
		p := filepath.Join(k.procSys, key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k.lastSys = k.sysState(t)
	return k
}

// plane returns a Plane for cfg on this kernel.
func (k *fakeKernel) plane(cfg Config) *Plane {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.StateDir = k.stateDir
	sys := newSysctls(log, cfg.StateDir)
	sys.root = k.procSys
	return newPlane(cfg, log, k, k, k, sys)
}

func (k *fakeKernel) record(format string, args ...any) {
	k.changes = append(k.changes, fmt.Sprintf(format, args...))
}

// take returns the changes since the last take, the sysctl and saved
// sysctl changes last.
func (k *fakeKernel) take(t *testing.T) []string {
	now := k.sysState(t)
	var keys []string
	for key := range now {
		keys = append(keys, key)
	}
	for key := range k.lastSys {
		if _, ok := now[key]; !ok {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		if was, is := k.lastSys[key], now[key]; was != is {
			k.record("%s: %s -> %s", key, orNone(was), orNone(is))
		}
	}
	k.lastSys = now
	out := k.changes
	k.changes = nil
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// sysState reads the fake /proc/sys tree and the saved original values.
func (k *fakeKernel) sysState(t *testing.T) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(k.procSys, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(k.procSys, p)
		out["sysctl "+dotted(rel)] = strings.TrimSpace(string(b))
		return nil
	})
	if b, err := os.ReadFile(filepath.Join(k.stateDir, "sysctl-orig.json")); err == nil {
		out["state-dir sysctl-orig.json"] = strings.Join(strings.Fields(string(b)), " ")
	}
	return out
}

func famName(f int) string {
	if f == netlink.FAMILY_V6 {
		return "v6"
	}
	return "v4"
}

func ruleString(r *netlink.Rule) string {
	s := fmt.Sprintf("%s pref %d fwmark %#x", famName(r.Family), r.Priority, r.Mark)
	if r.IifName != "" {
		s += " iif " + r.IifName
	}
	return fmt.Sprintf("%s lookup %d", s, r.Table)
}

func (k *fakeKernel) linkName(i int) string {
	for n, x := range k.links {
		if x == i {
			return n
		}
	}
	return fmt.Sprintf("if%d", i)
}

func (k *fakeKernel) routeString(r *netlink.Route) string {
	s := fmt.Sprintf("table %d %v", r.Table, routeDst(*r, r.Family))
	switch {
	case r.Type == unix.RTN_UNREACHABLE:
		s += " unreachable"
	case len(r.MultiPath) > 0:
		var legs []string
		for _, h := range r.MultiPath {
			gw, _ := netip.AddrFromSlice(h.Gw)
			legs = append(legs, fmt.Sprintf("nexthop via %v dev %s weight %d", gw.Unmap(), k.linkName(h.LinkIndex), h.Hops+1))
		}
		sort.Strings(legs)
		s += " " + strings.Join(legs, " ")
	default:
		gw, _ := netip.AddrFromSlice(r.Gw)
		s += fmt.Sprintf(" via %v dev %s", gw.Unmap(), k.linkName(r.LinkIndex))
		if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			s += " onlink"
		}
	}
	return fmt.Sprintf("%s proto %d", s, r.Protocol)
}

// netlinker

func (k *fakeKernel) RuleList(family int) ([]netlink.Rule, error) {
	var out []netlink.Rule
	for _, r := range k.rules {
		if r.Family == family {
			out = append(out, r)
		}
	}
	return out, nil
}

func sameRule(a, b *netlink.Rule) bool {
	return a.Family == b.Family && a.Mark == b.Mark && a.IifName == b.IifName && a.Table == b.Table && a.Priority == b.Priority
}

func (k *fakeKernel) RuleAdd(r *netlink.Rule) error {
	for i := range k.rules {
		if sameRule(&k.rules[i], r) {
			return unix.EEXIST
		}
	}
	k.rules = append(k.rules, *r)
	k.record("ip rule add %s", ruleString(r))
	return nil
}

func (k *fakeKernel) RuleDel(r *netlink.Rule) error {
	for i := range k.rules {
		if sameRule(&k.rules[i], r) {
			k.rules = slices.Delete(k.rules, i, i+1)
			k.record("ip rule del %s", ruleString(r))
			return nil
		}
	}
	return unix.ENOENT
}

func (k *fakeKernel) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	if mask != netlink.RT_FILTER_TABLE {
		return nil, errors.New("fake kernel: only table filters")
	}
	var out []netlink.Route
	for _, r := range k.routes {
		if r.Family == family && r.Table == filter.Table {
			out = append(out, r)
		}
	}
	return out, nil
}

func (k *fakeKernel) findRoute(r *netlink.Route) int {
	for i, x := range k.routes {
		if x.Family == r.Family && x.Table == r.Table && routeDst(x, x.Family) == routeDst(*r, r.Family) {
			return i
		}
	}
	return -1
}

func (k *fakeKernel) RouteReplace(r *netlink.Route) error {
	c := *r
	if c.Dst != nil && c.Dst.IP.To4() != nil && c.Family == netlink.FAMILY_V4 {
		c.Dst.IP = c.Dst.IP.To4()
	}
	if i := k.findRoute(&c); i >= 0 {
		k.routes[i] = c
	} else {
		k.routes = append(k.routes, c)
	}
	k.record("ip route replace %s", k.routeString(&c))
	return nil
}

func (k *fakeKernel) RouteDel(r *netlink.Route) error {
	i := k.findRoute(r)
	if i < 0 {
		return unix.ESRCH
	}
	k.record("ip route del %s", k.routeString(&k.routes[i]))
	k.routes = slices.Delete(k.routes, i, i+1)
	return nil
}

func (k *fakeKernel) LinkByName(name string) (netlink.Link, error) {
	i, ok := k.links[name]
	if !ok {
		return nil, fmt.Errorf("link %s not found", name)
	}
	return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name, Index: i}}, nil
}

func (k *fakeKernel) AddrList(netlink.Link, int) ([]netlink.Addr, error) { return nil, nil }

func (k *fakeKernel) Close() {}

// nftPlane

func (k *fakeKernel) ensure(paths []PathPlane) error {
	for _, pp := range paths {
		desc := fmt.Sprintf("path %s/%s: ct mark %#x <-> meta mark, replies on %s", pp.Service, pp.Path, pp.Mark, pp.Interface)
		if k.nftPaths[pp.Mark] == desc {
			continue
		}
		k.nftPaths[pp.Mark] = desc
		k.record("nft add %s", desc)
	}
	return nil
}

func (k *fakeKernel) stamp(svc string, prefixes []netip.Prefix, wans []string, mark uint32) error {
	desc := ""
	if len(prefixes) > 0 {
		desc = fmt.Sprintf("new connections to %v not from %v: mark %#x", prefixes, wans, mark)
		if mark == 0 {
			desc = fmt.Sprintf("new connections to %v not from %v: no mark (withdrawn)", prefixes, wans)
		}
	}
	if k.nftStamp[svc] == desc {
		return nil
	}
	if desc == "" {
		delete(k.nftStamp, svc)
		k.record("nft del stamp %s", svc)
		return nil
	}
	k.nftStamp[svc] = desc
	k.record("nft stamp %s: %s", svc, desc)
	return nil
}

func (k *fakeKernel) spread(svc string, prefixes []netip.Prefix, wans []string, slots []Slot, idle time.Duration) error {
	desc := ""
	if len(prefixes) > 0 {
		var s []string
		for _, sl := range slots {
			s = append(s, fmt.Sprintf("%#x x%d", sl.Mark, sl.Weight))
		}
		desc = fmt.Sprintf("new connections to %v not from %v over [%s], pinned while idle < %v", prefixes, wans, strings.Join(s, " "), idle)
	}
	if k.nftSpread[svc] == desc {
		return nil
	}
	if desc == "" {
		delete(k.nftSpread, svc)
		k.record("nft del spread %s", svc)
		return nil
	}
	k.nftSpread[svc] = desc
	k.record("nft spread %s: %s", svc, desc)
	return nil
}

func (k *fakeKernel) delRestore(mark uint32) error {
	if desc, ok := k.nftPaths[mark]; ok {
		delete(k.nftPaths, mark)
		k.record("nft del %s", desc)
	}
	return nil
}

func (k *fakeKernel) remove() error {
	if len(k.nftPaths)+len(k.nftStamp)+len(k.nftSpread) > 0 {
		k.record("nft delete table reachd")
	}
	clear(k.nftPaths)
	clear(k.nftStamp)
	clear(k.nftSpread)
	return nil
}

// conntracker

func (k *fakeKernel) flushMark(mark uint32) error {
	k.record("conntrack flush mark %#x", mark)
	delete(k.pinned, mark)
	return nil
}

func (k *fakeKernel) countMarks(map[netip.Addr]bool) (map[uint32]int, error) {
	return maps.Clone(k.pinned), nil
}
