package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is one network namespace of a Lab.
type NS struct {
	Name string // full name, as in `ip netns list`

	lab    *Lab
	fd     netns.NsHandle // open while the lab lives; -1 before
	handle *netlink.Handle
}

func (n *NS) String() string { return n.Name }

// Path is the namespace's bind mount, /run/netns/<Name>.
func (n *NS) Path() string { return filepath.Join(netnsDir, n.Name) }

// Fd is an open file descriptor of the namespace, valid until Lab.Close.
func (n *NS) Fd() int { return int(n.fd) }

// Handle is a netlink handle bound to the namespace, valid until Lab.Close.
func (n *NS) Handle() *netlink.Handle { return n.handle }

// destroy closes what the lab holds open in n and deletes the namespace.
func (n *NS) destroy() error {
	if n.handle != nil {
		n.handle.Close()
		n.handle = nil
	}
	if n.fd.IsOpen() {
		n.fd.Close()
	}
	if err := deleteNamed(n.Name); err != nil {
		return fmt.Errorf("deleting namespace %s: %w", n.Name, err)
	}
	return nil
}

// ErrClosed is returned when a namespace is used after Lab.Close.
var ErrClosed = errors.New("lab closed")

// Do runs fn on an OS thread switched into the namespace and waits for it.
// fn runs on another goroutine than the caller's, so it must not call
// t.FailNow; goroutines that fn starts run in the host namespace. Sockets
// keep the namespace they were created in, so create them inside fn, and
// dial literal addresses: a name lookup may run on other threads.
// A panic in fn is re-raised in the caller.
func (n *NS) Do(fn func() error) error {
	type result struct {
		err error
		pnc any
	}
	if !n.fd.IsOpen() {
		return fmt.Errorf("namespace %s: %w", n.Name, ErrClosed)
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(n.fd); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("entering %s: %w", n.Name, err)}
			return
		}
		var r result
		func() {
			defer func() { r.pnc = recover() }()
			r.err = fn()
		}()
		// Only a thread that is back home may serve other goroutines; if
		// switching back fails the goroutine ends locked and the runtime
		// discards the thread.
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	r := <-done
	if r.pnc != nil {
		panic(r.pnc)
	}
	return r.err
}

// Sysctl writes value to /proc/sys/<key> inside the namespace. key is either
// a path ("net/ipv4/ip_forward") or dotted ("net.ipv4.ip_forward"; dotted
// keys cannot name interfaces with dots in their names).
func (n *NS) Sysctl(key, value string) error {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	p := filepath.Join("/proc/sys", filepath.Clean("/"+key))
	// /proc/sys/net resolves against the opener's namespace, hence Do.
	err := n.Do(func() error { return os.WriteFile(p, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.Name, err)
	}
	return nil
}

// ReadSysctl reads /proc/sys/<key> inside the namespace (key as for Sysctl).
func (n *NS) ReadSysctl(key string) (string, error) {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	p := filepath.Join("/proc/sys", filepath.Clean("/"+key))
	var v []byte
	err := n.Do(func() (err error) { v, err = os.ReadFile(p); return err })
	if err != nil {
		return "", fmt.Errorf("sysctl %s in %s: %w", key, n.Name, err)
	}
	return strings.TrimSpace(string(v)), nil
}

func (n *NS) link(ifname string) (netlink.Link, error) {
	if n.handle == nil {
		return nil, fmt.Errorf("namespace %s: %w", n.Name, ErrClosed)
	}
	lk, err := n.handle.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("link %s in %s: %w", ifname, n.Name, err)
	}
	return lk, nil
}

// SetLinkUp sets ifname administratively up or down.
func (n *NS) SetLinkUp(ifname string, up bool) error {
	lk, err := n.link(ifname)
	if err != nil {
		return err
	}
	if up {
		err = n.handle.LinkSetUp(lk)
	} else {
		err = n.handle.LinkSetDown(lk)
	}
	if err != nil {
		return fmt.Errorf("setting %s in %s up=%v: %w", ifname, n.Name, up, err)
	}
	return nil
}

// AddAddr adds cidr ("192.0.2.1/26", "2001:db8::1/64") to ifname; "lo" is
// fine for targets. IPv6 addresses skip DAD so they are usable at once.
func (n *NS) AddAddr(ifname, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("address %q: %w", cidr, err)
	}
	if err := checkLabPrefix(p); err != nil {
		return err
	}
	lk, err := n.link(ifname)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.handle.AddrAdd(lk, a); err != nil {
		return fmt.Errorf("adding %v to %s in %s: %w", p, ifname, n.Name, err)
	}
	return nil
}

// allowed are the only prefixes a lab may use: documentation and link-local.
var allowed = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fe80::/10"),
}

// ErrNotLabAddress is returned for addresses outside the documentation and
// link-local prefixes that a lab is allowed to use.
var ErrNotLabAddress = errors.New("address outside the lab's documentation and link-local prefixes")

func checkLabPrefix(p netip.Prefix) error {
	for _, a := range allowed {
		if a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return nil
		}
	}
	return fmt.Errorf("%v: %w", p, ErrNotLabAddress)
}

// parseDst turns "default" (with the family of gw) or a CIDR into a netlink
// destination.
func parseDst(dst string, v6 bool) (*net.IPNet, error) {
	if dst == "default" {
		if v6 {
			return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, nil
		}
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, nil
	}
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return nil, fmt.Errorf("route destination %q: %w", dst, err)
	}
	if p.Bits() > 0 { // default routes point into the lab anyway
		if err := checkLabPrefix(p); err != nil {
			return nil, err
		}
	}
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, nil
}

// AddRoute adds a route to dst ("default" or a CIDR, v4 or v6) via gateway gw,
// which must be on a connected subnet.
func (n *NS) AddRoute(dst, gw string) error {
	g, err := netip.ParseAddr(gw)
	if err != nil {
		return fmt.Errorf("route %s: gateway %q: %w", dst, gw, err)
	}
	if err := checkLabPrefix(netip.PrefixFrom(g, g.BitLen())); err != nil {
		return err
	}
	d, err := parseDst(dst, g.Is6())
	if err != nil {
		return err
	}
	if (d.IP.To4() == nil) != g.Is6() {
		return fmt.Errorf("route %s via %s: mixed address families", dst, gw)
	}
	r := &netlink.Route{Dst: d, Gw: g.AsSlice()}
	if err := n.handle.RouteAdd(r); err != nil {
		return fmt.Errorf("adding route %s via %s in %s: %w", dst, gw, n.Name, err)
	}
	return nil
}

// DelRoute deletes the route to dst (a CIDR). "default" deletes the IPv4 and
// the IPv6 default routes and fails only if there was neither.
func (n *NS) DelRoute(dst string) error {
	if dst == "default" {
		e4 := n.delRoute(dst, false)
		e6 := n.delRoute(dst, true)
		if e4 != nil && e6 != nil {
			return e4
		}
		return nil
	}
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return fmt.Errorf("route destination %q: %w", dst, err)
	}
	return n.delRoute(dst, p.Addr().Is6())
}

func (n *NS) delRoute(dst string, v6 bool) error {
	d, err := parseDst(dst, v6)
	if err != nil {
		return err
	}
	if err := n.handle.RouteDel(&netlink.Route{Dst: d}); err != nil {
		return fmt.Errorf("deleting route %s in %s: %w", d, n.Name, err)
	}
	return nil
}

// Command returns a command that runs inside the namespace (through
// `ip netns exec`, so /etc/netns/<name> and /sys follow the namespace too).
// It is meant for witnesses and servers in tests and the demo, never for
// the daemon. Lab.Close kills it if it still runs, because a live process
// would keep the namespace and its veths alive.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	c := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	n.lab.mu.Lock()
	n.lab.cmds = append(n.lab.cmds, c)
	n.lab.mu.Unlock()
	return c
}

// Listen is net.Listen with the socket created inside the namespace.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket with the socket created inside the namespace.
func (n *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() (err error) {
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// DialContext dials from inside the namespace; d may be nil.
func (n *NS) DialContext(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
