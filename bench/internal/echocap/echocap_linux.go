// Package echocap timestamps the ICMPv6 echo requests that arrive on an
// interface (an AF_PACKET socket in the interface's namespace, with a BPF
// filter that keeps only echo requests and only their first 48 bytes) and
// works out each target's send jitter from them: how far each gap between
// two requests to the same target is from the probe interval. It is the
// benchmarks' independent witness of when a tool really sent, the same for
// every tool.
package echocap

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/reachd/reachd/internal/lab"
	"golang.org/x/sys/unix"
)

const (
	batchLen = 64
	snapLen  = 48 // IPv6 header + the ICMPv6 header
)

// filter keeps ICMPv6 (next header 58, no extension headers) echo requests
// (type 128) and cuts them to snapLen bytes. Offsets are from the IPv6
// header: a SOCK_DGRAM packet socket starts at the network header.
var filter = []unix.SockFilter{
	{Code: 0x30, K: 6},          // ldb [6]: next header
	{Code: 0x15, Jf: 3, K: 58},  // jeq ICMPv6, else drop
	{Code: 0x30, K: 40},         // ldb [40]: ICMPv6 type
	{Code: 0x15, Jf: 1, K: 128}, // jeq echo request, else drop
	{Code: 0x06, K: snapLen},    // keep snapLen bytes
	{Code: 0x06, K: 0},          // drop
}

// Capture records echo requests until Stop.
type Capture struct {
	fd   int
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	sends map[netip.Addr][]int64 // unix ns of each request, by destination
	total uint64
	drops uint64
	err   error
}

// Start opens the capture on ifname inside ns and starts reading.
func Start(ns *lab.NS, ifname string) (*Capture, error) {
	c := &Capture{fd: -1, stop: make(chan struct{}), done: make(chan struct{}), sends: map[netip.Addr][]int64{}}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		c.fd = fd
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fmt.Errorf("attaching the filter: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fmt.Errorf("SO_TIMESTAMPNS: %w", err)
		}
		// 50,000 requests a second must not overflow while this reader
		// waits for a CPU on a busy machine; drops are counted anyway.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<20)
		}
		// A blocking read returns every 100 ms, so that Stop is seen.
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		proto := uint16(unix.ETH_P_IPV6)
		proto = proto<<8 | proto>>8 // network byte order
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index})
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, fmt.Errorf("echocap on %s/%s: %w", ns.Name, ifname, err)
	}
	go c.read()
	return c, nil
}

type batch struct {
	hdrs [batchLen]unix.Mmsghdr
	iovs [batchLen]unix.Iovec
	bufs [batchLen][snapLen]byte
	oobs [batchLen][64]byte
}

func (c *Capture) read() {
	defer close(c.done)
	b := new(batch)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(snapLen)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		for i := range b.hdrs {
			b.hdrs[i].Hdr.Control = &b.oobs[i][0]
			b.hdrs[i].Hdr.SetControllen(len(b.oobs[i]))
			b.hdrs[i].Len = 0
		}
		// MSG_WAITFORONE: block for the first datagram, then take what is
		// queued.
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&b.hdrs[0])), batchLen, unix.MSG_WAITFORONE, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			continue
		default:
			c.mu.Lock()
			c.err = errno
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		for i := 0; i < int(n); i++ {
			h := &b.hdrs[i]
			if h.Len < 40 {
				continue
			}
			ts := stamp(b.oobs[i][:min(int(h.Hdr.Controllen), len(b.oobs[i]))])
			if ts == 0 {
				ts = time.Now().UnixNano()
			}
			dst := netip.AddrFrom16([16]byte(b.bufs[i][24:40]))
			c.sends[dst] = append(c.sends[dst], ts)
			c.total++
		}
		c.mu.Unlock()
	}
}

// stamp finds SCM_TIMESTAMPNS in control data (unix ns; 0 for none).
func stamp(oob []byte) int64 {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			return int64(binary.NativeEndian.Uint64(m.Data[0:8]))*1e9 + int64(binary.NativeEndian.Uint64(m.Data[8:16]))
		}
	}
	return 0
}

// Count is how many echo requests were captured so far.
func (c *Capture) Count() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Stop ends the capture and returns what it saw.
func (c *Capture) Stop() (*Result, error) {
	close(c.stop)
	<-c.done
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err == nil {
		c.drops += uint64(st.Drops)
	}
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Result{Sends: c.sends, Total: c.total, Drops: c.drops}, c.err
}
