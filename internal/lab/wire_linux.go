package lab

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Wire is a delay line between two interfaces of one namespace: every
// Ethernet frame that arrives on one leaves the other Delay later, in
// order, like a long circuit. This kernel has no netem, so the delay is
// made in user space (AF_PACKET sockets, one reader and one writer per
// direction); it adds the scheduling jitter of this process (well under a
// millisecond on an idle machine, more on a loaded one) and never drops a
// frame unless its queue of MaxQueue frames is full (counted in Dropped).
// Rate limits go on the routers' interfaces (RateLimit), where a real
// circuit's shaper would be.
type Wire struct {
	Delay time.Duration

	forwarded, dropped atomic.Uint64
	maxLate            atomic.Int64
	retries            atomic.Uint64
	wakeups            atomic.Uint64
	files              []*os.File
	stops              []int // eventfds that end the pumps
	wg                 sync.WaitGroup
	closeOnce          sync.Once
}

// MaxQueue bounds the frames in flight in one direction of a Wire (of at
// most 2048 bytes each: no jumbo frames).
const MaxQueue = 4096

// StartWire joins interfaces a and b of n with a delay line; the lab
// stops it when it closes. Neither interface should have addresses: the
// namespace is a wire, not a host.
func (n *NS) StartWire(a, b string, delay time.Duration) (*Wire, error) {
	if delay < 0 {
		return nil, fmt.Errorf("wire %s-%s: negative delay %v", a, b, delay)
	}
	w := &Wire{Delay: delay}
	var fa, fb *os.File
	err := n.Do(func() error {
		var err error
		if fa, err = packetSocket(a); err != nil {
			return err
		}
		fb, err = packetSocket(b)
		return err
	})
	if err != nil {
		if fa != nil {
			fa.Close()
		}
		return nil, fmt.Errorf("wire in %s: %w", n.Name, err)
	}
	w.files = []*os.File{fa, fb}
	w.pump(fa, fb)
	w.pump(fb, fa)
	n.lab.onClose(func() { w.Close() })
	return w, nil
}

// packetSocket opens an AF_PACKET socket that receives every frame
// arriving on ifname (not the ones it sends) and sends on it.
func packetSocket(ifname string) (*os.File, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", ifname, err)
	}
	for _, o := range []struct {
		level, opt, v int
		name          string
	}{
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"},
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16 << 20, "SO_RCVBUFFORCE"},
		{unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 16 << 20, "SO_SNDBUFFORCE"},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("%s on %s: %w", o.name, ifname, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding a packet socket to %s: %w", ifname, err)
	}
	// A blocking socket (MSG_DONTWAIT per read) used with raw syscalls
	// only: os.NewFile leaves a blocking descriptor out of Go's poller.
	return os.NewFile(uintptr(fd), "wire-"+ifname), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// pump moves frames from in to out, Delay later, in one goroutine locked
// to an OS thread of its own with real-time priority (SCHED_FIFO), which
// waits in ppoll with a nanosecond timeout rather than on Go timers: on a
// loaded machine those are late by milliseconds, and a late delay line
// releases frames in bunches that a shaper behind it would drop. Without
// the privilege for SCHED_FIFO it runs at normal priority.
func (w *Wire) pump(in, out *os.File) {
	ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return
	}
	w.stops = append(w.stops, ev)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer unix.Close(ev)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 10}, 0)
		inFd, outFd := int(in.Fd()), int(out.Fd())
		// A ring of fixed slots: the pump allocates nothing per frame, so
		// the garbage collector never stops it in the middle of a burst.
		const slot = 2048
		ring := make([]byte, MaxQueue*slot)
		lens := make([]int, MaxQueue)
		dues := make([]int64, MaxQueue) // monotonic nanoseconds
		head, n := 0, 0
		epoch := time.Now()
		now := func() int64 { return int64(time.Since(epoch)) }
		delay := int64(w.Delay)
		fds := []unix.PollFd{{Fd: int32(inFd), Events: unix.POLLIN}, {Fd: int32(ev), Events: unix.POLLIN}}
		for {
			var ts *unix.Timespec
			if n > 0 {
				t := unix.NsecToTimespec(max(dues[head]-now(), 0))
				ts = &t
			}
			if _, err := unix.Ppoll(fds, ts, nil); err != nil && err != unix.EINTR {
				return
			}
			w.wakeups.Add(1)
			if fds[1].Revents != 0 {
				return
			}
			for {
				i := (head + n) % MaxQueue
				if n == MaxQueue {
					// Full: read the frame to drop it.
					i = (head + n - 1) % MaxQueue
				}
				got, _, err := unix.Recvfrom(inFd, ring[i*slot:(i+1)*slot], unix.MSG_DONTWAIT)
				if err != nil {
					break
				}
				if n == MaxQueue {
					w.dropped.Add(1)
					continue
				}
				lens[i], dues[i] = got, now()+delay
				n++
			}
			t := now()
			for n > 0 && dues[head] <= t {
				if late := time.Duration(t - dues[head]); late > time.Duration(w.maxLate.Load()) {
					w.maxLate.Store(int64(late))
				}
				var err error
				for try := 0; try < 100; try++ {
					if _, err = unix.Write(outFd, ring[head*slot:head*slot+lens[head]]); err != unix.EAGAIN && err != unix.ENOBUFS {
						break
					}
					// The far side's backlog is full: wait in the
					// kernel (a Go timer could be late by milliseconds).
					w.retries.Add(1)
					ts := unix.NsecToTimespec(int64(20 * time.Microsecond))
					_ = unix.Nanosleep(&ts, nil)
				}
				if err == nil {
					w.forwarded.Add(1)
				} else {
					w.dropped.Add(1)
				}
				head = (head + 1) % MaxQueue
				n--
			}
		}
	}()
}

// Retries counts writes the far side refused for a moment (its backlog
// was full) and that were tried again.
func (w *Wire) Retries() uint64 { return w.retries.Load() }

// ResetLate forgets MaxLate, to judge one run on its own.
func (w *Wire) ResetLate() { w.maxLate.Store(0) }

// Wakeups counts the pumps' returns from waiting.
func (w *Wire) Wakeups() uint64 { return w.wakeups.Load() }

// MaxLate is the most a frame has left later than its due time: the delay
// line's own jitter.
func (w *Wire) MaxLate() time.Duration { return time.Duration(w.maxLate.Load()) }

// Forwarded and Dropped count frames since the wire started.
func (w *Wire) Forwarded() uint64 { return w.forwarded.Load() }
func (w *Wire) Dropped() uint64   { return w.dropped.Load() }

// Close stops the wire; idempotent.
func (w *Wire) Close() error {
	w.closeOnce.Do(func() {
		var one [8]byte
		one[0] = 1
		for _, ev := range w.stops {
			_, _ = unix.Write(ev, one[:])
		}
		w.wg.Wait()
		for _, f := range w.files {
			f.Close()
		}
	})
	return nil
}

// RateLimit shapes what leaves ifname to rate bits per second with a token
// bucket (tc tbf) of burst bytes and a queue of limit bytes; a packet that
// finds the queue full is dropped, as on a policed or shaped circuit.
func (n *NS) RateLimit(ifname string, rate uint64, burst, limit uint32) error {
	l, err := n.link(ifname)
	if err != nil {
		return err
	}
	bytesPerSec := rate / 8
	q := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       bytesPerSec,
		Limit:      limit,
		Buffer:     netlink.Xmittime(bytesPerSec, burst),
	}
	if err := n.handle.QdiscReplace(q); err != nil {
		return fmt.Errorf("tbf rate %d bit/s on %s in %s: %w", rate, ifname, n.Name, err)
	}
	return nil
}

// setTxChecksum turns checksum offload of what ifname sends on or off.
// A veth hands its peer packets whose UDP or TCP checksum is left for the
// "hardware" to fill in (CHECKSUM_PARTIAL); a Wire copies frames as bytes,
// so the far end would see them unfinished and drop them. With offload off
// the kernel computes the checksum before the frame leaves, as a real
// NIC's wire would carry it.
func (n *NS) setTxChecksum(ifname string, on bool) error {
	return n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		v := struct{ Cmd, Data uint32 }{Cmd: unix.ETHTOOL_STXCSUM}
		if on {
			v.Data = 1
		}
		var ifr struct {
			Name [unix.IFNAMSIZ]byte
			Data unsafe.Pointer
			_    [16]byte
		}
		copy(ifr.Name[:unix.IFNAMSIZ-1], ifname)
		ifr.Data = unsafe.Pointer(&v)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&v)
		if errno != 0 {
			return fmt.Errorf("tx checksum offload on %s in %s: %w", ifname, n.Name, errno)
		}
		return nil
	})
}
