package stamp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// oobSize holds a timespec and a TTL / hop-limit control message.
var oobSize = unix.CmsgSpace(16) + unix.CmsgSpace(4) + 16

// control returns a net.ListenConfig Control function that asks the kernel
// for receive timestamps (SO_TIMESTAMPNS) and the received TTL / hop limit,
// and sets SO_MARK when mark is not zero. Timestamps from the kernel keep
// Go scheduling delay out of T2 and T4.
func control(mark int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			s := int(fd)
			if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
				serr = fmt.Errorf("setting SO_TIMESTAMPNS: %w", err)
				return
			}
			if mark != 0 {
				if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
					serr = fmt.Errorf("setting SO_MARK %#x: %w", mark, err)
					return
				}
			}
			// Best effort: the TTL only fills the Session-Sender TTL field.
			// On an AF_INET6 socket IP_RECVTTL still applies to v4-mapped
			// traffic.
			_ = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
			_ = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}
}

func listenUDP(ctx context.Context, network, addr string, mark int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: control(mark)}
	pc, err := lc.ListenPacket(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func dialUDP(ctx context.Context, network string, laddr, raddr string, mark int) (*net.UDPConn, error) {
	d := net.Dialer{Control: control(mark)}
	if laddr != "" {
		la, err := net.ResolveUDPAddr(network, laddr)
		if err != nil {
			return nil, err
		}
		d.LocalAddr = la
	}
	c, err := d.DialContext(ctx, network, raddr)
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}

// parseOOB extracts the kernel receive timestamp and the TTL / hop limit
// from control messages. ok is false when the kernel gave no timestamp.
func parseOOB(oob []byte) (ts time.Time, ttl uint8, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, 0, false
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16:
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
			ts, ok = time.Unix(sec, nsec), true
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL && len(m.Data) >= 4:
			ttl = uint8(binary.NativeEndian.Uint32(m.Data))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			ttl = uint8(binary.NativeEndian.Uint32(m.Data))
		}
	}
	return ts, ttl, ok
}

// KernelClockEstimate reports whether the kernel considers its clock
// synchronised (adjtimex STA_UNSYNC clear) and its estimated error. It is
// the default source of the S bit and error estimate of our packets.
func KernelClockEstimate() ErrorEstimate {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return ErrorEstimate{Scale: 63, Multiplier: 255}
	}
	synced := state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	esterr := time.Duration(tx.Esterror) * time.Microsecond
	if esterr <= 0 {
		esterr = time.Microsecond
	}
	return NewErrorEstimate(esterr, synced)
}
