package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"golang.org/x/sys/unix"
)

// bypassLab is a host with two bypass cards: byp0 holds its own primary
// 192.0.2.1/24 (never touched), 16 IPv4 secondaries and 4 IPv6 addresses
// that bypass removes; byp1's primary 198.51.100.50/24 is removed by
// bypass, and with promote_secondaries off the kernel drops its two
// secondaries with it. cubro0 is set down by bypass.
type bypassLab struct {
	ns      *lab.NS
	removed []netip.Prefix // what bypass removes from byp0 and byp1 (the configured ones)
	dropped []netip.Prefix // byp1's secondaries, dropped by the kernel with its primary
}

func newBypassLab(t *testing.T) *bypassLab {
	t.Helper()
	l, err := lab.New("e2e-byp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ns, err := l.AddNS("host")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := l.AddNS("peer")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"byp0", "byp1", "cubro0"} {
		if err := l.Link(ns, n, peer, "p-"+n); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns.Sysctl("net/ipv4/conf/byp1/promote_secondaries", "0"); err != nil {
		t.Fatal(err)
	}
	b := &bypassLab{ns: ns}
	add := func(ifname, cidr string) {
		if err := ns.AddAddr(ifname, cidr); err != nil {
			t.Fatal(err)
		}
	}
	add("byp0", "192.0.2.1/24")
	for i := range 16 {
		p := netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/24", 50+i))
		add("byp0", p.String())
		b.removed = append(b.removed, p)
	}
	for i := range 4 {
		p := netip.MustParsePrefix(fmt.Sprintf("2001:db8:b::%d/64", 50+i))
		add("byp0", p.String())
		b.removed = append(b.removed, p)
	}
	add("byp1", "198.51.100.50/24")
	b.removed = append(b.removed, netip.MustParsePrefix("198.51.100.50/24"))
	for _, s := range []string{"198.51.100.51/24", "198.51.100.52/24"} {
		add("byp1", s)
		b.dropped = append(b.dropped, netip.MustParsePrefix(s))
	}
	return b
}

func (b *bypassLab) config() string {
	var rm strings.Builder
	for _, p := range b.removed {
		ifname := "byp0"
		if p.Addr().Is4() && netip.MustParsePrefix("198.51.100.0/24").Contains(p.Addr()) {
			ifname = "byp1"
		}
		fmt.Fprintf(&rm, "          - {interface: %s, address: %s}\n", ifname, p)
	}
	return `api:
  socket: {{DIR}}/reachd.sock
state-dir: {{DIR}}/state
heartbeats:
  listeners:
    - {name: ips1, listen: "127.0.0.1:0", timeout: 1h}
  groups:
    - name: inspection
      bypass:
        remove-addresses:
` + rm.String() + `        down-interfaces: [cubro0]
`
}

// kernel returns the global addresses (with prefix length) of byp0 and
// byp1 and whether cubro0 is up.
func (b *bypassLab) kernel(t *testing.T) (map[netip.Prefix]bool, bool) {
	t.Helper()
	got := map[netip.Prefix]bool{}
	for _, ifname := range []string{"byp0", "byp1"} {
		lk, err := b.ns.Handle().LinkByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		as, err := b.ns.Handle().AddrList(lk, unix.AF_UNSPEC)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			ad, _ := netip.AddrFromSlice(a.IP)
			ones, _ := a.Mask.Size()
			if ad.IsLinkLocalUnicast() {
				continue
			}
			got[netip.PrefixFrom(ad.Unmap(), ones)] = true
		}
	}
	lk, err := b.ns.Handle().LinkByName("cubro0")
	if err != nil {
		t.Fatal(err)
	}
	return got, lk.Attrs().RawFlags&unix.IFF_UP != 0
}

// changedFile is the part of state-dir/bypass-changed.json the test reads.
type changedFile struct {
	Removed map[string][]struct {
		Address string `json:"address"`
	} `json:"removed"`
	Downed []string `json:"downed"`
}

// recorded reads what bypass-changed.json holds as removed and set down.
func recorded(t *testing.T, dir string) (map[netip.Prefix]bool, []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state", "bypass-changed.json"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var c changedFile
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("bypass-changed.json is not whole: %v: %q", err, data)
	}
	out := map[netip.Prefix]bool{}
	for _, saved := range c.Removed {
		for _, s := range saved {
			p, err := netip.ParsePrefix(s.Address)
			if err != nil {
				t.Fatalf("bypass-changed.json: %v", err)
			}
			out[p] = true
		}
	}
	return out, c.Downed
}

// forced is the group's mode in bypass-force.json ("" when none is written).
func forced(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state", "bypass-force.json"))
	if os.IsNotExist(err) {
		return ""
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("bypass-force.json is not whole: %v: %q", err, data)
	}
	return m["inspection"]
}

// killWindow is how long after the API request TestSIGKILLDuringBypass
// may kill: the request and all the actions take a few milliseconds (two
// fsyncs, 24 netlink changes), so most kills should land before, during
// or just after them.
var killWindow = 15 * time.Millisecond

// TestSIGKILLDuringBypass forces the bypass group on and off through the
// API and kills reachd with SIGKILL 0-killWindow later, in the middle of its
// address and link changes (23 addresses, one link, the state files). Then,
// before restart: every address reachd may have removed is in the kernel
// or recorded as removed in bypass-changed.json, cubro0 is up or recorded
// as set down, no state file is partial; after restart: the kernel is
// exactly what the persisted forced mode calls for (every address back with
// its prefix length, or every one removed and recorded) and nothing is
// left recorded that is not so.
func TestSIGKILLDuringBypass(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs from .ci/run with a reduced -crash-iterations")
	}
	b := newBypassLab(t)
	all, _ := b.kernel(t)
	theirs := netip.MustParsePrefix("192.0.2.1/24")
	r, err := labdaemon.StartNS(b.ns, reachdBin, t.TempDir(), b.config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("reachd log:\n%s", r.Log())
		}
	})
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 16))
	t.Logf("seed %d, %d iterations", seed, *crashIterations)
	var midway int // kills that left the kernel between the two modes
	for i := range *crashIterations {
		mode := "force-on"
		if i%2 == 1 {
			mode = "force-off"
		}
		go r.Client.SetBypass(context.Background(), "inspection", mode)
		time.Sleep(time.Duration(rng.IntN(int(killWindow))))
		r.Kill()

		if damaged, _ := filepath.Glob(filepath.Join(r.Dir, "state", "*.damaged-*")); len(damaged) > 0 {
			t.Fatalf("iteration %d: damaged state files after SIGKILL: %v", i, damaged)
		}
		kern, up := b.kernel(t)
		rec, downed := recorded(t, r.Dir)
		present := 0
		for p := range all {
			switch {
			case kern[p]:
				present++
			case p == theirs:
				t.Fatalf("iteration %d: reachd removed %v, which it was never asked to", i, p)
			case !rec[p]:
				t.Fatalf("iteration %d: %v is gone from the kernel and not recorded as removed (recorded: %v)", i, p, rec)
			}
		}
		if !up && !slices.Contains(downed, "cubro0") {
			t.Fatalf("iteration %d: cubro0 is down and not recorded as set down", i)
		}
		if present != 1 && present != len(all) {
			midway++
		}

		if err := r.Restart(); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		want := forced(t, r.Dir)
		if err := waitBypassSettled(t, b, r.Dir, all, want); err != nil {
			t.Fatalf("iteration %d (forced %q): %v\n%s", i, want, err, r.Log())
		}
		if strings.Contains(r.Log(), "level=ERROR") {
			t.Fatalf("iteration %d: errors after restart:\n%s", i, r.Log())
		}
	}
	t.Logf("%d of %d kills caught the actions midway", midway, *crashIterations)
}

// waitBypassSettled waits until the kernel and bypass-changed.json are
// exactly what the forced mode calls for ("" is auto: the listener has not
// reported, so the kernel stays as it is; then only the invariant holds).
func waitBypassSettled(t *testing.T, b *bypassLab, dir string, all map[netip.Prefix]bool, mode string) error {
	t.Helper()
	var why string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		kern, up := b.kernel(t)
		rec, downed := recorded(t, dir)
		switch mode {
		case "force-off":
			why = ""
			if len(kern) != len(all) {
				why = fmt.Sprintf("kernel holds %d addresses, want all %d back", len(kern), len(all))
			}
			for p := range all {
				if !kern[p] {
					why = fmt.Sprintf("%v not restored", p)
				}
			}
			if !up {
				why = "cubro0 still down"
			}
			if len(rec) != 0 || len(downed) != 0 {
				why = fmt.Sprintf("still recorded: %v %v", rec, downed)
			}
		case "force-on":
			why = ""
			if len(kern) != 1 {
				why = fmt.Sprintf("kernel holds %d addresses, want only 192.0.2.1/24", len(kern))
			}
			for p := range all {
				if !kern[p] && !rec[p] {
					why = fmt.Sprintf("%v removed but not recorded", p)
				}
			}
			if up || !slices.Contains(downed, "cubro0") {
				why = fmt.Sprintf("cubro0 up=%v recorded=%v", up, downed)
			}
		default:
			return nil
		}
		if why == "" {
			return nil
		}
	}
	return fmt.Errorf("%s", why)
}
