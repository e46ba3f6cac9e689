package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces live, as with `ip netns add`.
const netnsDir = "/run/netns"

// Lab is a set of network namespaces created together and removed together
// by Close. Its methods are safe for concurrent use.
type Lab struct {
	prefix string // "rd<pid>x<hex>-<name>-", prepended to every ns name

	mu      sync.Mutex
	ns      []*NS
	cmds    []*exec.Cmd
	closers []func() // run by Close before the namespaces go, last first
	closed  bool
}

// onClose registers f to run when the lab closes (before its namespaces
// are deleted): goroutines and sockets that live in them.
func (l *Lab) onClose(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, f)
}

// stalePattern matches the names New gives namespaces and captures the pid of
// the process that made them; see SweepStale.
var stalePattern = regexp.MustCompile(`^rd([0-9]+)x[0-9a-f]{4}-`)

// New returns an empty lab. name goes into every namespace name; keep it
// short and free of '/' (it is cut to 8 characters).
func New(name string) (*Lab, error) {
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return nil, fmt.Errorf("lab name %q: want a short word without '/' or spaces", name)
	}
	if len(name) > 8 {
		name = name[:8]
	}
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("lab prefix: %w", err)
	}
	return &Lab{prefix: fmt.Sprintf("rd%dx%s-%s-", os.Getpid(), hex.EncodeToString(b[:]), name)}, nil
}

// Prefix is the string every namespace name of this lab starts with.
func (l *Lab) Prefix() string { return l.prefix }

// Namespaces returns the namespaces made so far, in creation order.
func (l *Lab) Namespaces() []*NS {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*NS(nil), l.ns...)
}

// AddNS creates the named namespace <prefix><name> with lo up, IPv4 and IPv6
// forwarding on, IPv6 DAD off (so v6 addresses are usable at once) and
// loose reverse-path filtering (rp_filter 2), as systemd sets it on stock
// Debian, Ubuntu and Fedora hosts. It is set rather than inherited because
// a new namespace copies the IPv4 settings of the host's, whatever they are.
// If a later step fails the namespace stays in the lab, so Close removes it.
func (l *Lab) AddNS(name string) (*NS, error) {
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return nil, fmt.Errorf("namespace name %q: want a word without '/' or spaces", name)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	full := l.prefix + name
	for _, n := range l.ns {
		if n.Name == full {
			l.mu.Unlock()
			return nil, fmt.Errorf("namespace %s exists already", full)
		}
	}
	l.mu.Unlock()

	if err := createNamed(full); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", full, err)
	}
	n := &NS{Name: full, lab: l, fd: -1}
	l.mu.Lock()
	l.ns = append(l.ns, n)
	closed := l.closed
	l.mu.Unlock()
	if closed { // Close ran meanwhile and did not see n
		_ = n.destroy()
		return nil, ErrClosed
	}

	h, err := netns.GetFromPath(n.Path())
	if err != nil {
		return nil, fmt.Errorf("opening namespace %s: %w", full, err)
	}
	n.fd = h
	if n.handle, err = netlink.NewHandleAt(h); err != nil {
		return nil, fmt.Errorf("netlink handle for %s: %w", full, err)
	}
	if err := n.SetLinkUp("lo", true); err != nil {
		return nil, err
	}
	for _, kv := range [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv6/conf/all/forwarding", "1"},
		{"net/ipv6/conf/all/accept_dad", "0"},
		{"net/ipv6/conf/default/accept_dad", "0"},
		{"net/ipv4/conf/all/rp_filter", strconv.Itoa(RPFilterLoose)},
		{"net/ipv4/conf/default/rp_filter", strconv.Itoa(RPFilterLoose)},
	} {
		if err := n.Sysctl(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// createNamed makes a new network namespace and bind-mounts it at
// /run/netns/<name>, like `ip netns add`. It unshares on a locked thread that
// is never unlocked: the runtime discards that thread when the goroutine
// ends, so no other goroutine ever runs in the new namespace by accident.
func createNamed(name string) error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(netnsDir, name)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock on purpose, see above
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(self, p, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(p)
		return err
	}
	return nil
}

// deleteNamed undoes createNamed. A missing entry is not an error.
func deleteNamed(name string) error {
	p := filepath.Join(netnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Link creates a veth pair with end aIf in a and end bIf in b, both up.
// The pair is created directly inside the namespaces (never in the host's).
func (l *Lab) Link(a *NS, aIf string, b *NS, bIf string) error {
	if len(aIf) > 15 || len(bIf) > 15 || aIf == "" || bIf == "" {
		return fmt.Errorf("link %s:%s-%s:%s: interface names must have 1 to 15 characters", a.Name, aIf, b.Name, bIf)
	}
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aIf},
		PeerName:      bIf,
		PeerNamespace: netlink.NsFd(b.fd),
	}
	if err := a.handle.LinkAdd(v); err != nil {
		return fmt.Errorf("adding veth %s:%s-%s:%s: %w", a.Name, aIf, b.Name, bIf, err)
	}
	if err := a.SetLinkUp(aIf, true); err != nil {
		return err
	}
	return b.SetLinkUp(bIf, true)
}

// Close kills the processes started from NS.Command that still run (they
// would keep a namespace alive), then deletes every namespace of the lab.
// It is idempotent and returns the first error met while going on with the rest.
func (l *Lab) Close() error {
	l.mu.Lock()
	l.closed = true
	nss, cmds, closers := l.ns, l.cmds, l.closers
	l.ns, l.cmds, l.closers = nil, nil, nil
	l.mu.Unlock()

	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	for _, c := range cmds {
		if c.Process != nil && c.ProcessState == nil {
			_ = c.Process.Kill() // ErrProcessDone when the caller has waited already
		}
	}
	var first error
	for i := len(nss) - 1; i >= 0; i-- {
		if err := nss[i].destroy(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// SweepStale deletes namespaces left behind by labs of processes that no
// longer exist (a crashed or killed test run) and returns their names.
// Namespaces of live processes, including this one, are never touched.
func SweepStale() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, e := range ents {
		m := stalePattern.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 {
			continue
		}
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			continue // alive (or not ours to judge)
		}
		if err := deleteNamed(e.Name()); err != nil {
			return gone, err
		}
		gone = append(gone, e.Name())
	}
	return gone, nil
}
