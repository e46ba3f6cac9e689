// Package bypass carries out bypass mode in the kernel: it removes addresses
// from interfaces (the bypass cards) and sets links down, and in normal mode
// restores exactly what it changed, using netlink (never the ip command).
//
// What it changed is kept in a state file, so a restarted reachd still
// knows which addresses to put back (with their prefix length, flags,
// scope, label and lifetimes) and which links it set down: it brings up
// only those, never a link an operator set down.
package bypass

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/statefile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/reachd/reachd/internal/atomicfile"
	"github.com/reachd/reachd/internal/policy/threshold"
)

// Netlink is the part of *netlink.Handle that the actions use; tests
// pass a handle bound to a lab namespace.
type Netlink interface {
	LinkByName(name string) (netlink.Link, error)
	LinkSetUp(link netlink.Link) error
	LinkSetDown(link netlink.Link) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
}

// SavedAddr is an address as the kernel held it before reachd removed it.
type SavedAddr struct {
	Interface   string `json:"interface"`
	Address     string `json:"address"` // with its own prefix length
	Label       string `json:"label,omitempty"`
	Flags       int    `json:"flags,omitempty"`
	Scope       int    `json:"scope,omitempty"`
	Peer        string `json:"peer,omitempty"`
	Broadcast   string `json:"broadcast,omitempty"`
	PreferedLft int    `json:"preferred-lft,omitempty"`
	ValidLft    int    `json:"valid-lft,omitempty"`
}

// Changed is what reachd changed and must undo: the persisted state.
type Changed struct {
	// Removed maps an item ("remove A from IF") to the addresses its
	// removal took away: the address itself and, for an IPv4 primary on a
	// host without promote_secondaries, the secondaries the kernel dropped
	// with it.
	Removed map[string][]SavedAddr `json:"removed,omitempty"`
	// Downed are the links reachd set down.
	Downed []string `json:"downed,omitempty"`
}

// Actions applies desired item modes. It is safe for use by one goroutine
// at a time (the heartbeat manager's); Changed may be read concurrently.
type Actions struct {
	h    Netlink
	file string

	mu      sync.Mutex
	removed map[threshold.Item][]SavedAddr
	downed  map[string]bool

	loadErr *statefile.Damaged // the state file was damaged at New
}

// New returns Actions acting through h. file keeps what was changed across
// restarts ("" keeps it in memory only); it is read now. A damaged file
// (unreadable, not JSON, an address that does not parse) does not fail New:
// it is moved aside, the Actions start with nothing recorded as changed
// (the kernel is left as it is), and LoadError reports it for the log.
func New(h Netlink, file string) (*Actions, error) {
	a := &Actions{h: h, file: file, removed: map[threshold.Item][]SavedAddr{}, downed: map[string]bool{}}
	if file == "" {
		return a, nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		a.loadErr = statefile.Quarantine(file, err, time.Now())
		return a, nil
	}
	var c Changed
	if err := json.Unmarshal(data, &c); err != nil {
		a.loadErr = statefile.Quarantine(file, fmt.Errorf("not the JSON reachd writes: %w", err), time.Now())
		return a, nil
	}
	removed := map[threshold.Item][]SavedAddr{}
	for _, saved := range c.Removed {
		if len(saved) == 0 {
			continue
		}
		p, err := netip.ParsePrefix(saved[0].Address)
		if err != nil {
			a.loadErr = statefile.Quarantine(file, fmt.Errorf("address %q: %w", saved[0].Address, err), time.Now())
			return a, nil
		}
		removed[threshold.Item{Kind: threshold.RemoveAddress, Interface: saved[0].Interface, Addr: p.Addr()}] = saved
	}
	a.removed = removed
	for _, l := range c.Downed {
		a.downed[l] = true
	}
	return a, nil
}

// LoadError is the *statefile.Damaged error of a damaged state file found
// by New, or nil.
func (a *Actions) LoadError() error {
	if a.loadErr == nil {
		return nil
	}
	return a.loadErr
}

// Changed returns what reachd currently holds changed.
func (a *Actions) Changed() Changed {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := Changed{Removed: map[string][]SavedAddr{}}
	for it, s := range a.removed {
		c.Removed[it.String()] = slices.Clone(s)
	}
	for l := range a.downed {
		c.Downed = append(c.Downed, l)
	}
	sort.Strings(c.Downed)
	return c
}

// Summary is what Changed holds, for people: every removed address as
// "ADDRESS on INTERFACE" and every interface set down, each sorted.
func (a *Actions) Summary() (removed, down []string) {
	c := a.Changed()
	removed = []string{}
	for _, v := range c.Removed {
		for _, s := range v {
			removed = append(removed, s.Address+" on "+s.Interface)
		}
	}
	sort.Strings(removed)
	return removed, append([]string{}, c.Downed...)
}

// Apply brings every item to its mode. Items that reachd changed but that
// are absent from desired (a reload dropped them) are restored. Bypass
// removes addresses before setting links down; normal sets links up before
// restoring addresses. It goes on after an error and returns all of them.
//
// What bypass is about to change is written to the state file first, in
// one write for the whole call, and only then made in the kernel: a crash
// in between leaves it recorded as changed, never changed and forgotten
// (restoring an address that is still there, or bringing up a link that
// is up, is harmless). If that write fails (a full disk) bypass still
// happens: passing traffic matters more than the record, which stays in
// memory and is written with the next change; the error says so.
func (a *Actions) Apply(desired map[threshold.Item]threshold.Mode) error {
	var errs []error
	var changed bool
	mode := func(it threshold.Item) threshold.Mode {
		m, ok := desired[it]
		if !ok {
			return threshold.Normal
		}
		return m
	}
	items := a.items(desired)
	var removals []*removal
	downs := map[string]netlink.Link{}
	for _, it := range items {
		switch {
		case it.Kind == threshold.RemoveAddress && mode(it) == threshold.Bypass:
			r, err := a.prepareRemove(it)
			errs = append(errs, err)
			if r != nil {
				removals = append(removals, r)
			}
		case it.Kind == threshold.LinkDown && mode(it) == threshold.Bypass:
			lk, err := a.prepareDown(it.Interface)
			errs = append(errs, err)
			if lk != nil {
				downs[it.Interface] = lk
			}
		}
	}
	if len(removals) > 0 || len(downs) > 0 {
		if err := a.save(); err != nil {
			errs = append(errs, fmt.Errorf("entering bypass without a record on disk (reachd restarted now would not undo it): %w", err))
		}
	}
	for _, r := range removals {
		c, err := a.finishRemove(r)
		changed = changed || c
		errs = append(errs, err)
	}
	for _, it := range items {
		if it.Kind != threshold.LinkDown {
			continue
		}
		if lk, ok := downs[it.Interface]; ok {
			c, err := a.finishDown(it.Interface, lk)
			changed = changed || c
			errs = append(errs, err)
		} else if mode(it) == threshold.Normal {
			c, err := a.bringUp(it.Interface)
			changed = changed || c
			errs = append(errs, err)
		}
	}
	for _, it := range items {
		if it.Kind == threshold.RemoveAddress && mode(it) == threshold.Normal {
			c, err := a.restoreAddr(it)
			changed = changed || c
			errs = append(errs, err)
		}
	}
	if changed {
		errs = append(errs, a.save())
	}
	return errors.Join(errs...)
}

// items lists desired and recorded items in a stable order.
func (a *Actions) items(desired map[threshold.Item]threshold.Mode) []threshold.Item {
	set := map[threshold.Item]bool{}
	for it := range desired {
		set[it] = true
	}
	a.mu.Lock()
	for it := range a.removed {
		set[it] = true
	}
	for l := range a.downed {
		set[threshold.Item{Kind: threshold.LinkDown, Interface: l}] = true
	}
	a.mu.Unlock()
	out := make([]threshold.Item, 0, len(set))
	for it := range set {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (a *Actions) link(name string) (netlink.Link, error) {
	lk, err := a.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	return lk, nil
}

func family(ad netip.Addr) int {
	if ad.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// removal is an address that bypass removes, recorded ahead.
type removal struct {
	it     threshold.Item
	lk     netlink.Link
	target netlink.Addr
	before []netlink.Addr // the family's addresses before
	ahead  []SavedAddr    // recorded: target and what may go with it
}

// prepareRemove records it's address (and the secondaries its removal
// may take with it) as removed, in memory; nil when it is not there
// (nothing to remove, and nothing to restore later).
func (a *Actions) prepareRemove(it threshold.Item) (*removal, error) {
	lk, err := a.link(it.Interface)
	if err != nil {
		return nil, err
	}
	before, err := a.h.AddrList(lk, family(it.Addr))
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", it.Interface, err)
	}
	i := slices.IndexFunc(before, func(x netlink.Addr) bool { return ipOf(x) == it.Addr })
	if i < 0 {
		return nil, nil
	}
	r := &removal{it: it, lk: lk, target: before[i], before: before}
	r.ahead = []SavedAddr{save(it.Interface, r.target)}
	for _, x := range before {
		if ipOf(x) != it.Addr && mayDropWith(r.target, x) {
			r.ahead = append(r.ahead, save(it.Interface, x))
		}
	}
	a.record(it, r.ahead)
	return r, nil
}

// finishRemove removes the address and keeps recorded what the kernel
// really dropped.
func (a *Actions) finishRemove(r *removal) (bool, error) {
	if err := a.h.AddrDel(r.lk, &r.target); err != nil {
		a.unrecord(r.it, r.ahead)
		if now, lerr := a.h.AddrList(r.lk, family(r.it.Addr)); lerr == nil &&
			!slices.ContainsFunc(now, func(x netlink.Addr) bool { return ipOf(x) == r.it.Addr }) {
			// Gone already: an IPv4 secondary whose primary this call
			// removed just before (recorded with that one), or someone
			// else's doing. Nothing to remove.
			return true, nil
		}
		return true, fmt.Errorf("removing %v from %s: %w", r.it.Addr, r.it.Interface, err)
	}
	// Removing an IPv4 primary also drops its secondaries unless
	// promote_secondaries is set; keep those recorded that went, to
	// restore them, and forget the ones the kernel kept.
	if after, err := a.h.AddrList(r.lk, family(r.it.Addr)); err == nil {
		var kept []SavedAddr
		for _, x := range r.before {
			if ipOf(x) != r.it.Addr && mayDropWith(r.target, x) &&
				slices.ContainsFunc(after, func(y netlink.Addr) bool { return ipOf(y) == ipOf(x) }) {
				kept = append(kept, save(r.it.Interface, x))
			}
		}
		a.unrecord(r.it, kept)
	}
	return true, nil
}

// mayDropWith reports whether removing target may make the kernel drop x
// too: x is an IPv4 secondary of target's subnet and target its primary.
func mayDropWith(target, x netlink.Addr) bool {
	if target.IPNet == nil || x.IPNet == nil || target.IP.To4() == nil || x.IP.To4() == nil {
		return false
	}
	if target.Flags&unix.IFA_F_SECONDARY != 0 || x.Flags&unix.IFA_F_SECONDARY == 0 {
		return false
	}
	return target.IPNet.Contains(x.IP) && x.IPNet.Contains(target.IP)
}

// record adds saved to what item it removed, once per address.
func (a *Actions) record(it threshold.Item, saved []SavedAddr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range saved {
		if !slices.ContainsFunc(a.removed[it], func(x SavedAddr) bool { return x.Address == s.Address }) {
			a.removed[it] = append(a.removed[it], s)
		}
	}
}

// unrecord forgets saved addresses of item (the kernel still holds them).
func (a *Actions) unrecord(it threshold.Item, saved []SavedAddr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	left := slices.DeleteFunc(a.removed[it], func(x SavedAddr) bool {
		return slices.ContainsFunc(saved, func(s SavedAddr) bool { return s.Address == x.Address })
	})
	if len(left) == 0 {
		delete(a.removed, it)
	} else {
		a.removed[it] = left
	}
}

func (a *Actions) restoreAddr(it threshold.Item) (bool, error) {
	a.mu.Lock()
	saved, ok := a.removed[it]
	a.mu.Unlock()
	if !ok {
		return false, nil
	}
	lk, err := a.link(it.Interface)
	if err != nil {
		return false, err
	}
	var errs []error
	var left []SavedAddr
	for _, s := range saved {
		na, err := s.netlinkAddr()
		if err == nil {
			err = a.h.AddrAdd(lk, na)
			if errors.Is(err, unix.EEXIST) {
				err = nil // someone put it back already
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restoring %s on %s: %w", s.Address, s.Interface, err))
			left = append(left, s)
		}
	}
	a.mu.Lock()
	if len(left) == 0 {
		delete(a.removed, it)
	} else {
		a.removed[it] = left
	}
	a.mu.Unlock()
	return len(left) < len(saved), errors.Join(errs...)
}

// prepareDown records name as set down by reachd, in memory, and returns
// its link; nil when it is down already (an operator's doing, or ours:
// either way nothing to do).
func (a *Actions) prepareDown(name string) (netlink.Link, error) {
	lk, err := a.link(name)
	if err != nil {
		return nil, err
	}
	if lk.Attrs().RawFlags&unix.IFF_UP == 0 {
		return nil, nil
	}
	a.mu.Lock()
	a.downed[name] = true
	a.mu.Unlock()
	return lk, nil
}

func (a *Actions) finishDown(name string, lk netlink.Link) (bool, error) {
	if err := a.h.LinkSetDown(lk); err != nil {
		a.mu.Lock()
		delete(a.downed, name)
		a.mu.Unlock()
		return true, fmt.Errorf("setting %s down: %w", name, err)
	}
	return true, nil
}

// bringUp sets name up again if reachd set it down (never a link an
// operator set down).
func (a *Actions) bringUp(name string) (bool, error) {
	a.mu.Lock()
	downed := a.downed[name]
	a.mu.Unlock()
	if !downed {
		return false, nil
	}
	lk, err := a.link(name)
	if err != nil {
		return false, err
	}
	if lk.Attrs().RawFlags&unix.IFF_UP == 0 {
		if err := a.h.LinkSetUp(lk); err != nil {
			return false, fmt.Errorf("setting %s up: %w", name, err)
		}
	}
	a.mu.Lock()
	delete(a.downed, name)
	a.mu.Unlock()
	return true, nil
}

func (a *Actions) save() error {
	if a.file == "" {
		return nil
	}
	data, err := json.MarshalIndent(a.Changed(), "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.file), 0o755); err != nil {
		return fmt.Errorf("saving bypass state: %w", err)
	}
	// fsynced: after a crash this file is what repairs the kernel.
	if err := atomicfile.WriteFile(a.file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving bypass state: %w", err)
	}
	return nil
}

func ipOf(x netlink.Addr) netip.Addr {
	if x.IPNet == nil {
		return netip.Addr{}
	}
	ad, _ := netip.AddrFromSlice(x.IP)
	return ad.Unmap()
}

func save(ifname string, x netlink.Addr) SavedAddr {
	s := SavedAddr{
		Interface: ifname, Address: x.IPNet.String(), Label: x.Label, Flags: x.Flags, Scope: x.Scope,
		PreferedLft: x.PreferedLft, ValidLft: x.ValidLft,
	}
	if x.Peer != nil {
		s.Peer = x.Peer.String()
	}
	if x.Broadcast != nil {
		s.Broadcast = x.Broadcast.String()
	}
	return s
}

// kernelOnlyFlags are address flags the kernel sets itself; passing them
// back would be refused or meaningless.
const kernelOnlyFlags = unix.IFA_F_SECONDARY | unix.IFA_F_PERMANENT | unix.IFA_F_TENTATIVE |
	unix.IFA_F_DADFAILED | unix.IFA_F_DEPRECATED

func (s SavedAddr) netlinkAddr() (*netlink.Addr, error) {
	ip, ipn, err := net.ParseCIDR(s.Address)
	if err != nil {
		return nil, err
	}
	ipn.IP = ip
	na := &netlink.Addr{IPNet: ipn, Label: s.Label, Flags: s.Flags &^ kernelOnlyFlags, Scope: s.Scope}
	// Lifetimes: a permanent address lists as "forever" (all ones); pass
	// lifetimes only for addresses that had finite ones.
	if s.ValidLft > 0 && uint32(s.ValidLft) != 0xffffffff {
		na.ValidLft, na.PreferedLft = s.ValidLft, s.PreferedLft
	}
	if s.Peer != "" {
		pip, pn, err := net.ParseCIDR(s.Peer)
		if err != nil {
			return nil, err
		}
		pn.IP = pip
		na.Peer = pn
	}
	if s.Broadcast != "" {
		na.Broadcast = net.ParseIP(s.Broadcast)
	}
	return na, nil
}
