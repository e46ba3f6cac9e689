package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Stream is a steady UDP stream between two namespaces ("production
// traffic" beside a test): datagrams of a fixed size at a fixed rate, for
// at most a set time, into a sink that discards them.
type Stream struct {
	// Rate is the offered load in IP bits per second (IP and UDP headers
	// included, Ethernet not).
	Rate float64
	Size int // IP packet size of a datagram

	sent, received atomic.Uint64
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	conns          []net.PacketConn
	once           sync.Once
}

// StartStream sends from `from` to dst, an address of `to`, rate bits per
// second of size-byte IP packets (IPv4 or IPv6 by dst), for at most limit;
// Stop ends it earlier. The lab stops it when it closes. The sender keeps
// its schedule by sending, every 250 µs, as many datagrams as the
// rate asks for since the start, so a late wake-up does not lower the
// average rate.
func StartStream(from, to *NS, dst netip.AddrPort, rate float64, size int, limit time.Duration) (*Stream, error) {
	hdr := 28
	if dst.Addr().Is6() {
		hdr = 48
	}
	if size <= hdr || size > 65535 || !(rate > 0) || limit <= 0 {
		return nil, fmt.Errorf("stream: size %d rate %v limit %v", size, rate, limit)
	}
	sink, err := to.ListenPacket("udp", dst.String())
	if err != nil {
		return nil, fmt.Errorf("stream sink on %v: %w", dst, err)
	}
	var fd int
	err = from.Do(func() error {
		fam, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()})
		if dst.Addr().Is6() {
			fam, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}
		}
		var err error
		if fd, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		if err = unix.Connect(fd, sa); err != nil {
			unix.Close(fd)
		}
		return err
	})
	if err != nil {
		sink.Close()
		return nil, fmt.Errorf("stream sender: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	s := &Stream{Rate: rate, Size: size, cancel: cancel, conns: []net.PacketConn{sink}}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			if _, _, err := sink.ReadFrom(buf); err != nil {
				return
			}
			s.received.Add(1)
		}
	}()
	go func() {
		defer s.wg.Done()
		defer unix.Close(fd)
		// Like Wire's pumps: an OS thread of its own at real-time
		// priority that sleeps in the kernel, so that the stream stays
		// steady on a loaded machine instead of coming in bunches.
		runtime.LockOSThread()
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 10}, 0)
		payload := make([]byte, size-hdr)
		perSec := rate / float64(size*8)
		start := time.Now()
		for ctx.Err() == nil {
			due := uint64(time.Since(start).Seconds() * perSec)
			for s.sent.Load() < due {
				// A full buffer or a policed link: the datagram counts as
				// offered load all the same.
				_, _ = unix.Write(fd, payload)
				s.sent.Add(1)
			}
			ts := unix.NsecToTimespec(int64(250 * time.Microsecond))
			_ = unix.Nanosleep(&ts, nil)
		}
	}()
	from.lab.onClose(s.Stop)
	return s, nil
}

// Stop ends the stream; idempotent.
func (s *Stream) Stop() {
	s.once.Do(func() {
		s.cancel()
		for _, c := range s.conns {
			c.Close()
		}
		s.wg.Wait()
	})
}

// Sent and Received count datagrams.
func (s *Stream) Sent() uint64     { return s.sent.Load() }
func (s *Stream) Received() uint64 { return s.received.Load() }
