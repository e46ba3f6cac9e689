package icmp

import (
	"encoding/binary"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchLen is how many datagrams one recvmmsg(2) may return. Replies of
// many targets arrive in bursts; one system call then reads up to this many.
const batchLen = 32

// batch is the reader's reusable recvmmsg state: no allocation per packet.
type batch struct {
	hdrs [batchLen]unix.Mmsghdr
	iovs [batchLen]unix.Iovec
	bufs [batchLen][2048]byte // an echo reply of Options.Size plus an IPv4 header
	oobs [batchLen][64]byte   // room for one SCM_TIMESTAMPNS
}

func newBatch() *batch {
	b := new(batch)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(len(b.bufs[i]))
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	return b
}

// recv reads what is queued, up to batchLen datagrams, without blocking.
func (b *batch) recv(fd int) (int, error) {
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Control = &b.oobs[i][0]
		b.hdrs[i].Hdr.SetControllen(len(b.oobs[i]))
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), batchLen, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// packet returns the i-th datagram of the last recv and its kernel receive
// timestamp (zero if the kernel gave none).
func (b *batch) packet(i int) ([]byte, time.Time) {
	h := &b.hdrs[i]
	n := min(int(h.Len), len(b.bufs[i]))
	return b.bufs[i][:n], cmsgTimestamp(b.oobs[i][:min(int(h.Hdr.Controllen), len(b.oobs[i]))])
}

// cmsgTimestamp finds SCM_TIMESTAMPNS in control data without allocating
// (unix.ParseSocketControlMessage allocates a slice per packet).
func cmsgTimestamp(oob []byte) time.Time {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return time.Time{}
		}
		data := oob[unix.CmsgLen(0):l]
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(data[8:16]))
			return time.Unix(sec, nsec)
		}
		sp := unix.CmsgSpace(l - unix.CmsgLen(0))
		if sp > len(oob) {
			return time.Time{}
		}
		oob = oob[sp:]
	}
	return time.Time{}
}

// readLoop reads datagrams until the socket is closed or fails, calling fn
// for each with its kernel timestamp. All of it runs inside one RawConn.Read:
// a batch shorter than batchLen means the queue was empty when the kernel
// looked, and every datagram that arrives later raises a new poller event
// that this same Read waits for, so the loop parks at once instead of
// spending a second system call on EAGAIN. (A new RawConn.Read would reset
// the pending event; staying inside one keeps it.)
func (c *conn) readLoop(fn func(b []byte, ts time.Time)) error {
	b := newBatch()
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, err := b.recv(int(fd))
			switch err {
			case nil:
			case unix.EAGAIN:
				return false
			case unix.EINTR:
				continue
			default:
				rerr = err
				return true
			}
			for i := 0; i < n; i++ {
				p, ts := b.packet(i)
				fn(p, ts)
			}
			if n < batchLen {
				return false
			}
		}
	})
	if err != nil {
		return err
	}
	return rerr
}
