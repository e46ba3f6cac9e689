package icmp

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// conn is one ICMP socket of one (family, mark, interface).
type conn struct {
	f    *os.File
	rc   syscall.RawConn // of f, kept: SyscallConn allocates
	v6   bool
	raw  bool // raw socket (IP header on v4 reads, we own the identifier)
	port uint16
}

// openConn opens a raw ICMP socket, or an unprivileged ping socket when raw
// sockets are not allowed, sets SO_TIMESTAMPNS, SO_MARK and SO_BINDTODEVICE,
// and registers it with Go's poller so that Close unblocks a pending read.
func openConn(v6 bool, mark int, ifname string, allowRaw bool) (*conn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	raw := allowRaw
	fd, err := -1, error(nil)
	if raw {
		fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err == unix.EPERM || err == unix.EACCES {
			raw = false
		}
	}
	if !raw {
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	}
	if err != nil {
		return nil, fmt.Errorf("opening ICMP socket (raw needs CAP_NET_RAW, ping sockets need net.ipv4.ping_group_range): %w", err)
	}
	fail := func(what string, err error) (*conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("setting SO_TIMESTAMPNS", err)
	}
	// A bigger receive buffer keeps bursts of replies from many targets.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
			return fail("setting SO_MARK", err)
		}
	}
	if ifname != "" {
		if err := unix.BindToDevice(fd, ifname); err != nil {
			return fail("binding to "+ifname, err)
		}
	}
	if raw {
		if v6 {
			var f unix.ICMPv6Filter
			for i := range f.Data {
				f.Data[i] = 0xffffffff // block all ...
			}
			f.Data[typeEchoReply6>>5] &^= 1 << (typeEchoReply6 & 31) // ... but echo replies
			if err := unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
				return fail("setting ICMPV6_FILTER", err)
			}
		} else {
			// ICMP_FILTER (linux/icmp.h): a mask of the types to drop.
			const icmpFilter = 1
			if err := unix.SetsockoptInt(fd, unix.SOL_RAW, icmpFilter, ^(1 << typeEchoReply4)); err != nil {
				return fail("setting ICMP_FILTER", err)
			}
		}
	}
	c := &conn{v6: v6, raw: raw}
	if !raw {
		// The kernel uses the bound port as the echo identifier.
		var sa unix.Sockaddr = &unix.SockaddrInet4{}
		if v6 {
			sa = &unix.SockaddrInet6{}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fail("binding ping socket", err)
		}
		got, err := unix.Getsockname(fd)
		if err != nil {
			return fail("reading ping socket port", err)
		}
		switch a := got.(type) {
		case *unix.SockaddrInet4:
			c.port = uint16(a.Port)
		case *unix.SockaddrInet6:
			c.port = uint16(a.Port)
		}
	}
	c.f = os.NewFile(uintptr(fd), "icmp")
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		return nil, fmt.Errorf("icmp socket: %w", err)
	}
	c.rc = rc
	return c, nil
}

func (c *conn) close() error { return c.f.Close() }
