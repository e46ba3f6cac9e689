package icmp

import (
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendLen is how many echo requests one sendmmsg(2) may carry.
const sendLen = 64

// sendBatch is the reusable sendmmsg state of one ProbeBatch call (pooled:
// ProbeBatch may run on several goroutines at once).
type sendBatch struct {
	hdrs   [sendLen]unix.Mmsghdr
	iovs   [sendLen]unix.Iovec
	names6 [sendLen]unix.RawSockaddrInet6
	names4 [sendLen]unix.RawSockaddrInet4
	bufs   [sendLen][maxSize]byte
	sent   [sendLen]time.Time
	errs   [sendLen]error
	toks   [sendLen]Token
	pds    [sendLen]*pending
	n      int
}

// maxSize bounds Options.Size: one echo request fits one Ethernet MTU.
const maxSize = 1500

var sendBatches = sync.Pool{New: func() any { return new(sendBatch) }}

// set fills message i: size bytes of b's buffer i to addr.
func (b *sendBatch) set(i int, to netip.Addr, size int) {
	b.iovs[i].Base = &b.bufs[i][0]
	b.iovs[i].SetLen(size)
	h := &b.hdrs[i].Hdr
	*h = unix.Msghdr{Iov: &b.iovs[i]}
	h.SetIovlen(1)
	if to.Is4() {
		b.names4[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: to.As4()}
		h.Name = (*byte)(unsafe.Pointer(&b.names4[i]))
		h.Namelen = unix.SizeofSockaddrInet4
	} else {
		b.names6[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: to.As16()}
		h.Name = (*byte)(unsafe.Pointer(&b.names6[i]))
		h.Namelen = unix.SizeofSockaddrInet6
	}
	b.hdrs[i].Len = 0
	b.errs[i] = nil
	b.sent[i] = time.Time{}
}

// sendmmsg is the system call; tests replace it to inject errors.
var sendmmsg = func(fd int, hdrs []unix.Mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// sendAll writes the b.n messages, as few system calls as the kernel
// allows. sendmmsg stops at the first message that fails: it returns how
// many went before it, and the next call returns that message's error. So
// a failed message gets its own error and the rest are still sent.
//
// Every message of one call gets the clock read just before the call as
// its send time, as a single send does. A later message of the batch
// really leaves after the ones before it: its RTT then includes that wait,
// so it is never under the true RTT and over it by at most the call's
// duration (on a veth, where each message is carried to its target inside
// the call, about 5-10 µs per message before it; the engine's batches are
// the attempts due in one two-millisecond slot, so about rate/500 messages).
// Interpolating the send times instead gave RTTs below the true one, even
// negative. Kernel transmit timestamps (SO_TIMESTAMPING) would be exact at
// the cost of reading the error queue.
//
// It returns an error only when the socket itself failed (closed); then
// the messages not yet sent carry it too.
func (c *conn) sendAll(b *sendBatch) error {
	i := 0
	werr := c.rc.Write(func(fd uintptr) bool {
		for i < b.n {
			t0 := time.Now()
			n, err := sendmmsg(int(fd), b.hdrs[i:b.n])
			switch err {
			case nil:
			case unix.EAGAIN:
				return false // wait until the socket is writable
			case unix.EINTR:
				continue
			default:
				b.sent[i], b.errs[i] = t0, err
				i++
				continue
			}
			if n <= 0 {
				return false
			}
			for m := 0; m < n; m++ {
				b.sent[i+m] = t0
			}
			i += n
		}
		return true
	})
	if werr != nil {
		for ; i < b.n; i++ {
			b.sent[i], b.errs[i] = time.Now(), werr
		}
	}
	return werr
}
