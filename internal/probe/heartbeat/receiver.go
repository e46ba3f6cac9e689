// Package heartbeat receives heartbeats: a UDP or TCP listener (bound to
// an interface when asked) that turns every datagram or line that is the
// payload, or a fresh heartbeat signed with the shared key
// (internal/hbauth), from an allowed source into an event. It decides
// nothing: the heartbeat feature's liveness machines do.
package heartbeat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is one heartbeat listener's socket and what counts on it.
type Listener struct {
	Name      string
	Protocol  string // "udp" or "tcp"
	Listen    string // host:port
	Interface string // bound to this interface when set
	// Payload is what a heartbeat carries (or what a signed one signs).
	Payload string
	// Attempts windows of Timeout without a heartbeat make the listener
	// failed; a TCP connection silent for twice that is closed.
	Timeout  time.Duration
	Attempts int
	// AllowFrom, when set, are the only sources that count.
	AllowFrom []netip.Prefix
	// SharedKey, when set, makes only signed heartbeats count
	// (internal/hbauth), MaxSkew off this host's clock at most.
	SharedKey []byte
	MaxSkew   time.Duration
}

// Key identifies what the socket and what counts on it depend on: a
// reload that keeps it keeps the listener running with its state.
func (l Listener) Key() string {
	return l.Protocol + "|" + l.Listen + "|" + l.Interface + "|" + strconv.Quote(l.Payload) +
		"|" + fmt.Sprint(l.AllowFrom) + "|" + fmt.Sprintf("%x", sha256.Sum256(l.SharedKey)) + "|" + l.MaxSkew.String()
}

// Event is what a receiver reports.
type Event struct {
	Beat  bool   // a heartbeat arrived
	Bound string // the socket is bound to this address
	Err   error  // the socket could not be bound
}

// RebindDelay is how long a receiver waits before trying again to bind.
const RebindDelay = 2 * time.Second

// maxTCPConns bounds the connections one TCP listener serves at once: a
// heartbeat listener expects one sender (or a few, reconnecting); more
// connections are closed as soon as they are accepted, so that a flood
// cannot make reachd start a goroutine per connection without limit.
var maxTCPConns = 64

// tcpIdle is how long a TCP heartbeat connection may stay silent before it
// is closed: twice the listener's failure window (attempts × timeout), at
// least 30 s. A sender that is quiet for that long has already made the
// listener fail; it reconnects when it sends again.
var tcpIdle = func(lc Listener) time.Duration {
	return max(2*time.Duration(max(lc.Attempts, 1))*lc.Timeout, 30*time.Second)
}

// Receive owns one listener's socket until ctx ends: it binds (retrying
// while binding fails, e.g. the address is not configured yet) and turns
// every matching datagram or TCP write into an event.
// send must return false once the receiver should stop (ctx ended);
// reject is told why bytes were refused (counted by reason).
func Receive(ctx context.Context, lc Listener, send func(Event) bool, reject func(reason string)) {
	g := newGate(lc, reject)
	for {
		var err error
		if lc.Protocol == "tcp" {
			err = receiveTCP(ctx, lc, send, g)
		} else {
			err = receiveUDP(ctx, lc, send, g)
		}
		if ctx.Err() != nil {
			return
		}
		if !send(Event{Err: err}) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(RebindDelay):
		}
	}
}

func listenConfig(ifname string) *net.ListenConfig {
	lc := &net.ListenConfig{}
	if ifname != "" {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), ifname) })
			if err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("binding to device %s: %w", ifname, serr)
			}
			return nil
		}
	}
	return lc
}

// closeOnDone closes c when ctx ends, which unblocks its reads.
func closeOnDone(ctx context.Context, c interface{ Close() error }) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			c.Close()
		case <-done:
		}
	}()
	return func() { close(done); wg.Wait() }
}

func receiveUDP(ctx context.Context, lc Listener, send func(Event) bool, g *gate) error {
	pc, err := listenConfig(lc.Interface).ListenPacket(ctx, "udp", lc.Listen)
	if err != nil {
		return err
	}
	defer pc.Close()
	stop := closeOnDone(ctx, pc)
	defer stop()
	if !send(Event{Bound: pc.LocalAddr().String()}) {
		return nil
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading: %w", err)
		}
		src := addrOf(from)
		if g.allowed(src) && g.beat(src, buf[:n]) && !send(Event{Beat: true}) {
			return nil
		}
	}
}

func receiveTCP(ctx context.Context, lc Listener, send func(Event) bool, g *gate) error {
	ln, err := listenConfig(lc.Interface).Listen(ctx, "tcp", lc.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	stop := closeOnDone(ctx, ln)
	defer stop()
	if !send(Event{Bound: ln.Addr().String()}) {
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	payload := []byte(lc.Payload)
	idle := tcpIdle(lc)
	slots := make(chan struct{}, maxTCPConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accepting: %w", err)
		}
		src := addrOf(c.RemoteAddr())
		if !g.allowed(src) {
			c.Close()
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close() // over the limit: refuse rather than queue
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer c.Close()
			stop := closeOnDone(ctx, c)
			defer stop()
			readStream(deadlineConn{c, idle}, payload, g.v != nil, func(line []byte) bool { return g.beat(src, line) }, func() bool { return send(Event{Beat: true}) })
		}()
	}
}

// deadlineConn sets a read deadline of idle from now before every read.
type deadlineConn struct {
	net.Conn
	idle time.Duration
}

func (d deadlineConn) Read(b []byte) (int, error) {
	if err := d.Conn.SetReadDeadline(time.Now().Add(d.idle)); err != nil {
		return 0, err
	}
	return d.Conn.Read(b)
}

// readStream counts heartbeats on a TCP connection: without a payload
// every read counts; with one, every line isBeat accepts (the payload, or a
// signed heartbeat), and for plain payloads also a write that is exactly the
// payload, for senders that send no newline. Signed heartbeats must end
// with a newline. Junk without newlines is cut to a tail of maxLine bytes.
func readStream(c net.Conn, payload []byte, signed bool, isBeat func([]byte) bool, beat func() bool) {
	maxLine := 4*len(payload) + 64
	if signed {
		maxLine = 4*len(payload) + 256
	}
	buf := make([]byte, 4096)
	var line []byte
	for {
		n, err := c.Read(buf)
		if n > 0 {
			data := buf[:n]
			if len(payload) == 0 && !signed {
				if !beat() {
					return
				}
			} else {
				line = append(line, data...)
				for {
					i := bytes.IndexByte(line, '\n')
					if i < 0 {
						break
					}
					if isBeat(line[:i]) && !beat() {
						return
					}
					line = line[i+1:]
				}
				if !signed && isBeat(line) {
					if !beat() {
						return
					}
					line = line[:0]
				}
				if len(line) > maxLine {
					line = line[len(line)-maxLine/2:] // junk without newlines: keep a tail only
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// matches reports whether data is a heartbeat: anything when payload is
// empty, otherwise exactly payload, ignoring one trailing "\n" or "\r\n".
func matches(payload, data []byte) bool {
	if len(payload) == 0 {
		return true
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	return bytes.Equal(payload, data)
}
