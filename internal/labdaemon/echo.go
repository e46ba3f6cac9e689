package labdaemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/lab"
)

// EchoServer is a line-echo TCP server on the internet namespace's server
// address. It records the source of every connection: the router
// masquerades, so the source tells which WAN a connection left through.
type EchoServer struct {
	ln      net.Listener
	mu      sync.Mutex
	sources []netip.Addr
	seen    chan struct{}
}

// StartEcho listens on the topology's Server4, port 7.
func StartEcho(top *lab.Topology) (*EchoServer, error) { return StartEchoOn(top, top.Server4) }

// StartEchoOn listens on addr (top.Server4 or top.Server6), port 7, in the
// internet namespace.
func StartEchoOn(top *lab.Topology, addr netip.Addr) (*EchoServer, error) {
	ln, err := top.Internet.Listen("tcp", netip.AddrPortFrom(addr, 7).String())
	if err != nil {
		return nil, err
	}
	e := &EchoServer{ln: ln, seen: make(chan struct{}, 64)}
	go e.serve()
	return e, nil
}

func (e *EchoServer) serve() {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		e.sources = append(e.sources, netip.MustParseAddrPort(c.RemoteAddr().String()).Addr().Unmap())
		e.mu.Unlock()
		e.seen <- struct{}{}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				fmt.Fprintln(c, sc.Text())
			}
		}()
	}
}

// Addr is the server's address.
func (e *EchoServer) Addr() net.Addr { return e.ln.Addr() }

// Close stops accepting.
func (e *EchoServer) Close() error { return e.ln.Close() }

// Last is the source of the latest connection.
func (e *EchoServer) Last() netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.sources) == 0 {
		return netip.Addr{}
	}
	return e.sources[len(e.sources)-1]
}

// EchoConn is a client connection to the EchoServer.
type EchoConn struct {
	c  net.Conn
	rd *bufio.Reader
}

// Dial connects from the client namespace through the router, sends one
// line, and returns once the server has recorded the connection.
func (e *EchoServer) Dial(ctx context.Context, top *lab.Topology) (*EchoConn, error) {
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := top.Client.DialContext(dctx, &net.Dialer{}, "tcp", e.ln.Addr().String())
	if err != nil {
		return nil, fmt.Errorf("client connection: %w", err)
	}
	ec := &EchoConn{c: c, rd: bufio.NewReader(c)}
	if err := ec.Echo("hello"); err != nil {
		c.Close()
		return nil, err
	}
	select {
	case <-e.seen:
	case <-time.After(2 * time.Second):
	}
	return ec, nil
}

// Echo sends a line and waits up to 10 s for it to come back (TCP
// retransmits after an outage take a while).
func (c *EchoConn) Echo(msg string) error {
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c.c, msg); err != nil {
		return err
	}
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo %q came back as %q", msg, line)
	}
	return nil
}

// LocalPort is the client's source port (to find its conntrack entry).
func (c *EchoConn) LocalPort() uint16 {
	return netip.MustParseAddrPort(c.c.LocalAddr().String()).Port()
}

// Close closes the connection.
func (c *EchoConn) Close() error { return c.c.Close() }
