package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VIPs adds and removes anycast service addresses (a /32 or /128 on an
// interface, lo by default) for the BGP announcer: the address is on the
// interface before its route is announced and leaves only after the
// withdraw (internal/feature/bgp orders the two).
type VIPs struct{ h *netlink.Handle }

// NewVIPs opens a netlink handle in the current namespace.
func NewVIPs() (*VIPs, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &VIPs{h: h}, nil
}

// Close releases the handle.
func (v *VIPs) Close() { v.h.Close() }

func vipAddr(a netip.Addr) *netlink.Addr {
	bits := a.BitLen()
	na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
	if a.Is6() {
		// No duplicate address detection on an anycast address: every
		// server has it, and DAD would leave it tentative (unusable).
		na.Flags = unix.IFA_F_NODAD
	}
	return na
}

// Has reports whether a is on ifname (with any prefix length).
func (v *VIPs) Has(ifname string, a netip.Addr) (bool, error) {
	l, err := v.h.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("interface %s: %w", ifname, err)
	}
	addrs, err := v.h.AddrList(l, family(a))
	if err != nil {
		return false, fmt.Errorf("listing addresses of %s: %w", ifname, err)
	}
	for _, x := range addrs {
		if xa, ok := netip.AddrFromSlice(x.IP); ok && xa.Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

// Add puts a on ifname; added is false when it was there already (then it
// is not reachd's to remove).
func (v *VIPs) Add(ifname string, a netip.Addr) (added bool, err error) {
	if has, err := v.Has(ifname, a); err != nil || has {
		return false, err
	}
	l, err := v.h.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := v.h.AddrAdd(l, vipAddr(a)); err != nil && !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("adding %v to %s: %w", a, ifname, err)
	}
	return true, nil
}

// Del removes a from ifname; an address that is not there is no error.
func (v *VIPs) Del(ifname string, a netip.Addr) error {
	l, err := v.h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifname, err)
	}
	if err := v.h.AddrDel(l, vipAddr(a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %v from %s: %w", a, ifname, err)
	}
	return nil
}

// InterfaceTo is the interface the main table reaches a over (a learned
// next-hop's interface on the load balancer).
func (v *VIPs) InterfaceTo(a netip.Addr) (string, error) {
	rs, err := v.h.RouteGet(a.AsSlice())
	if err != nil || len(rs) == 0 {
		return "", fmt.Errorf("no route to %v: %w", a, err)
	}
	l, err := v.h.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return "", fmt.Errorf("interface of the route to %v: %w", a, err)
	}
	return l.Attrs().Name, nil
}
