package icmp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// conn is one ICMP socket of one (family, mark, interface).
type conn struct {
	f    *os.File
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
	return c, nil
}

func sockaddr(a netip.Addr) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Addr: a.As4()}
	}
	sa := &unix.SockaddrInet6{Addr: a.As16()}
	return sa
}

// send writes one packet. It returns the wall-clock time taken just before
// the system call, which it also hands to stamp before the call.
func (c *conn) send(b []byte, to netip.Addr, stamp func(time.Time)) (time.Time, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return time.Time{}, err
	}
	sa := sockaddr(to.Unmap())
	var sent time.Time
	var serr error
	werr := rc.Write(func(fd uintptr) bool {
		sent = time.Now()
		stamp(sent)
		serr = unix.Sendto(int(fd), b, 0, sa)
		return serr != unix.EAGAIN
	})
	if werr != nil {
		return sent, werr
	}
	return sent, serr
}

// recv reads one packet into b with its kernel receive timestamp and source.
func (c *conn) recv(b, oob []byte) (n int, from netip.Addr, ts time.Time, err error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return 0, from, ts, err
	}
	var oobn int
	var sa unix.Sockaddr
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, sa, rerr = unix.Recvmsg(int(fd), b, oob, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, from, ts, err
	}
	if rerr != nil {
		return 0, from, ts, rerr
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		from = netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		from = netip.AddrFrom16(a.Addr)
	}
	ts = kernelTimestamp(oob[:oobn])
	return n, from, ts, nil
}

func kernelTimestamp(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
			return time.Unix(sec, nsec)
		}
	}
	return time.Time{}
}

func (c *conn) close() error { return c.f.Close() }
