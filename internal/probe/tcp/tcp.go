// Package tcp is the TCP connect prober: an attempt succeeds when the
// three-way handshake completes within the timeout. A refused connection is
// a failure (the service behind the path is not there), reported with its
// reason.
package tcp

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/reachd/reachd/internal/probe"
	"golang.org/x/sys/unix"
)

// Prober dials TCP. Each attempt runs in its own short-lived goroutine; the
// prober owns them and Close waits for them.
type Prober struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a TCP prober.
func New() *Prober {
	ctx, cancel := context.WithCancel(context.Background())
	return &Prober{ctx: ctx, cancel: cancel}
}

// Probe dials req.Target:req.Port from the socket's mark and interface.
func (p *Prober) Probe(req probe.Request, done func(probe.Result)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		done(p.dial(req))
	}()
}

func (p *Prober) dial(req probe.Request) probe.Result {
	d := net.Dialer{
		Timeout: req.Timeout,
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if req.Mark != 0 {
					if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, req.Mark); serr != nil {
						return
					}
				}
				if req.Interface != "" {
					serr = unix.BindToDevice(int(fd), req.Interface)
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	addr := net.JoinHostPort(req.Target.Unmap().String(), strconv.Itoa(req.Port))
	start := time.Now()
	c, err := d.DialContext(p.ctx, "tcp", addr)
	rtt := time.Since(start)
	if err != nil {
		return probe.Result{Sent: start, Detail: detail(err)}
	}
	c.Close()
	return probe.Result{OK: true, Sent: start, RTT: rtt}
}

func detail(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "prober closed"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Close cancels attempts in flight and waits for them.
func (p *Prober) Close() error {
	p.cancel()
	p.wg.Wait()
	return nil
}
