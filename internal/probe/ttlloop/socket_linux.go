package ttlloop

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/reachd/reachd/internal/linkplan"
	"golang.org/x/sys/unix"
)

// Socket options x/sys/unix does not name: the ICMP type filters of raw
// ICMP sockets (linux/icmp.h, linux/icmpv6.h). A set bit blocks that type.
const (
	icmpFilter   = 1 // ICMP_FILTER at level SOL_RAW
	icmpv6Filter = 1 // ICMPV6_FILTER at level IPPROTO_ICMPV6
)

// errMsgSize is the send error for a probe larger than the path MTU.
var errMsgSize = unix.EMSGSIZE

// recvBuf is the receive buffer we ask for: a burst of linkplan.MaxCount Time
// Exceeded messages quoting 576 bytes each needs a few MB of skb memory.
const recvBuf = 8 << 20

// sockets are the two raw sockets of a test. send is bound to the
// interface and never reads (its ICMP filter blocks everything); recv is
// not bound, because the Time Exceeded that this host sends itself arrives
// over the loopback device, not over the link.
type sockets struct {
	v6         bool
	send, recv *os.File
	dst        unix.Sockaddr
}

// openSockets opens the raw sockets in the calling thread's network
// namespace.
func openSockets(o Options) (s *sockets, err error) {
	s = &sockets{v6: o.Loop.Is6()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if s.v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
		s.dst = &unix.SockaddrInet6{Addr: o.Loop.As16()}
	} else {
		s.dst = &unix.SockaddrInet4{Addr: o.Loop.As4()}
	}
	open := func(name string) (*os.File, int, error) {
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
				return nil, 0, fmt.Errorf("opening raw ICMP socket: %w (needs root or CAP_NET_RAW)", err)
			}
			return nil, 0, fmt.Errorf("opening raw ICMP socket: %w", err)
		}
		return os.NewFile(uintptr(fd), name), fd, nil
	}

	var rfd, sfd int
	if s.recv, rfd, err = open("linktest-recv"); err != nil {
		return s, err
	}
	if s.send, sfd, err = open("linktest-send"); err != nil {
		return s, err
	}

	set := func(what string, e error) {
		if e != nil && err == nil {
			err = fmt.Errorf("setting %s: %w", what, e)
		}
	}
	// Receive socket: only the errors we read, kernel timestamps, a drop
	// counter and a large buffer.
	if s.v6 {
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = 0xffffffff
		}
		f.Data[0] &^= 1<<icmp6TimeExceeded | 1<<icmp6Unreachable
		set("ICMPV6_FILTER", unix.SetsockoptICMPv6Filter(rfd, unix.IPPROTO_ICMPV6, icmpv6Filter, &f))
	} else {
		mask := ^uint32(1<<icmp4TimeExceeded | 1<<icmp4Unreachable)
		set("ICMP_FILTER", unix.SetsockoptInt(rfd, unix.SOL_RAW, icmpFilter, int(int32(mask))))
	}
	set("SO_TIMESTAMPNS", unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1))
	set("SO_RXQ_OVFL", unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1))
	if unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBuf) != nil {
		// Without CAP_NET_ADMIN the kernel caps this at net.core.rmem_max.
		_ = unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBuf)
	}

	// Send socket: bound to the link, TTL, never fragment, mark, reads
	// nothing.
	set("SO_BINDTODEVICE "+o.Interface, unix.SetsockoptString(sfd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, o.Interface))
	if o.Mark != 0 {
		set("SO_MARK", unix.SetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_MARK, o.Mark))
	}
	if s.v6 {
		set("IPV6_UNICAST_HOPS", unix.SetsockoptInt(sfd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, o.TTL))
		set("IPV6_TCLASS", unix.SetsockoptInt(sfd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, linkplan.TOS(o.DSCP)))
		set("IPV6_MTU_DISCOVER", unix.SetsockoptInt(sfd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO))
		set("IPV6_DONTFRAG", unix.SetsockoptInt(sfd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1))
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = 0xffffffff
		}
		set("ICMPV6_FILTER", unix.SetsockoptICMPv6Filter(sfd, unix.IPPROTO_ICMPV6, icmpv6Filter, &f))
	} else {
		set("IP_TTL", unix.SetsockoptInt(sfd, unix.IPPROTO_IP, unix.IP_TTL, o.TTL))
		set("IP_TOS", unix.SetsockoptInt(sfd, unix.IPPROTO_IP, unix.IP_TOS, linkplan.TOS(o.DSCP)))
		set("IP_MTU_DISCOVER", unix.SetsockoptInt(sfd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO))
		set("ICMP_FILTER", unix.SetsockoptInt(sfd, unix.SOL_RAW, icmpFilter, -1))
	}
	return s, err
}

func (s *sockets) close() {
	if s.send != nil {
		s.send.Close()
	}
	if s.recv != nil {
		s.recv.Close()
	}
}

// sendProbe sends one ICMP message to the loop address. ENOBUFS (a full
// device queue during a back-to-back burst) is retried a few times.
func (s *sockets) sendProbe(msg []byte) error {
	rc, err := s.send.SyscallConn()
	if err != nil {
		return err
	}
	for try := 0; ; try++ {
		var serr error
		err = rc.Write(func(fd uintptr) bool {
			serr = unix.Sendto(int(fd), msg, 0, s.dst)
			return serr != unix.EAGAIN
		})
		if err == nil {
			err = serr
		}
		if !errors.Is(err, unix.ENOBUFS) || try >= 50 {
			return err
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// received is one message read from the receive socket.
type received struct {
	from    netip.Addr
	msg     []byte // the ICMP message, from its type byte
	at      time.Time
	dropped uint32 // SO_RXQ_OVFL counter, valid if hasDrop
	hasDrop bool
}

// recvOne reads one message; with dontWait it never blocks (used to drain
// the socket after the read deadline has passed).
func (s *sockets) recvOne(buf, oob []byte, dontWait bool) (received, error) {
	rc, err := s.recv.SyscallConn()
	if err != nil {
		return received{}, err
	}
	var (
		n, oobn int
		from    unix.Sockaddr
		rerr    error
	)
	read := func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	}
	if dontWait {
		err = rc.Control(func(fd uintptr) { read(fd) })
	} else {
		err = rc.Read(read)
	}
	if err == nil {
		err = rerr
	}
	if err != nil {
		return received{}, err
	}
	r := received{msg: buf[:n], at: time.Now()}
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		r.from = netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		r.from = netip.AddrFrom16(sa.Addr)
	}
	if !s.v6 {
		// A raw IPv4 socket delivers the IP header too.
		if n < 20 || int(buf[0]&0x0f)*4 > n {
			return r, errShort
		}
		r.msg = buf[int(buf[0]&0x0f)*4 : n]
	}
	cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, c := range cmsgs {
		if c.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch c.Header.Type {
		case unix.SCM_TIMESTAMPNS:
			if len(c.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
				ts := *(*unix.Timespec)(unsafe.Pointer(&c.Data[0]))
				r.at = time.Unix(int64(ts.Sec), int64(ts.Nsec))
			}
		case unix.SO_RXQ_OVFL:
			if len(c.Data) >= 4 {
				r.dropped = *(*uint32)(unsafe.Pointer(&c.Data[0]))
				r.hasDrop = true
			}
		}
	}
	return r, nil
}

// isTimeout reports whether err is the read deadline passing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
