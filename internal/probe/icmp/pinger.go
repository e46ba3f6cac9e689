package icmp

import (
	"container/heap"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reachd/reachd/internal/probe"
	"golang.org/x/sys/unix"
)

// Options configure a Pinger.
type Options struct {
	// Unprivileged forces ping sockets even when raw sockets are allowed.
	Unprivileged bool
	// Size is the ICMP message size in bytes (header, token and padding);
	// the default is the smallest that holds the token (24).
	Size int
}

// Stats are the Pinger's counters.
type Stats struct {
	Sent      uint64 // echo requests written
	Replies   uint64 // replies matched to a pending probe
	BadToken  uint64 // replies with a known id and sequence but the wrong token (ignored)
	Unmatched uint64 // replies for no pending probe (late, duplicate or someone else's)
	Malformed uint64 // packets that did not parse
	Timeouts  uint64 // probes that got no reply in time
	SendErrs  uint64 // probes whose send failed
}

// Pinger sends ICMP echo requests and matches replies. It is safe for
// concurrent use.
type Pinger struct {
	opts Options

	mu     sync.Mutex
	conns  map[connKey]*pconn
	closed bool

	tmu    sync.Mutex
	timers timerHeap
	armed  time.Time // deadline the expiry timer is set for; zero: none (guarded by tmu)
	wake   chan struct{}

	rng   *rand.ChaCha8 // token source, guarded by mu
	stats struct {
		sent, replies, badToken, unmatched, malformed, timeouts, sendErrs atomic.Uint64
	}
	wg   sync.WaitGroup
	done chan struct{}
}

type connKey struct {
	v6     bool
	mark   int
	ifname string
}

type pconn struct {
	*conn
	id      uint16
	mu      sync.Mutex
	seq     uint16
	pending map[uint16]*pending
}

type pending struct {
	pc       *pconn
	seq      uint16
	token    Token
	target   netip.Addr
	sent     time.Time
	deadline time.Time
	done     func(probe.Result)
	index    int // in the timer heap; -1 when removed
}

// New returns a Pinger. Sockets are opened on first use.
func New(opts Options) *Pinger {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic("icmp: crypto/rand failed: " + err.Error())
	}
	p := &Pinger{
		opts:  opts,
		conns: map[connKey]*pconn{},
		rng:   rand.NewChaCha8(seed),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	p.wg.Add(1)
	go p.expire()
	return p
}

// Stats returns a snapshot of the counters.
func (p *Pinger) Stats() Stats {
	return Stats{
		Sent: p.stats.sent.Load(), Replies: p.stats.replies.Load(), BadToken: p.stats.badToken.Load(),
		Unmatched: p.stats.unmatched.Load(), Malformed: p.stats.malformed.Load(),
		Timeouts: p.stats.timeouts.Load(), SendErrs: p.stats.sendErrs.Load(),
	}
}

// Sockets returns how many sockets are open.
func (p *Pinger) Sockets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

var errClosed = errors.New("pinger closed")

func (p *Pinger) getConn(k connKey) (*pconn, *Token, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, errClosed
	}
	var tok Token
	p.rng.Read(tok[:])
	if pc := p.conns[k]; pc != nil {
		return pc, &tok, nil
	}
	c, err := openConn(k.v6, k.mark, k.ifname, !p.opts.Unprivileged)
	if err != nil {
		return nil, nil, err
	}
	pc := &pconn{conn: c, pending: map[uint16]*pending{}}
	var idb [4]byte
	p.rng.Read(idb[:])
	pc.id = uint16(idb[0])<<8 | uint16(idb[1])
	pc.seq = uint16(idb[2])<<8 | uint16(idb[3])
	if !c.raw {
		pc.id = c.port
	}
	p.conns[k] = pc
	p.wg.Add(1)
	go p.read(pc)
	return pc, &tok, nil
}

// Probe sends one echo request to req.Target and calls done with the
// outcome: the reply's RTT, or a failure after req.Timeout.
func (p *Pinger) Probe(req probe.Request, done func(probe.Result)) {
	target := req.Target.Unmap()
	k := connKey{v6: target.Is6(), mark: req.Mark, ifname: req.Interface}
	pc, tok, err := p.getConn(k)
	if err != nil {
		p.stats.sendErrs.Add(1)
		done(probe.Result{Sent: time.Now(), Detail: err.Error()})
		return
	}
	pd := &pending{pc: pc, token: *tok, target: target, done: done, index: -1}
	// The deadline is armed before the send so that a fast reply always
	// finds its timer to cancel.
	pd.sent = time.Now()
	pd.deadline = pd.sent.Add(req.Timeout)
	pc.mu.Lock()
	for i := 0; i < 1<<16; i++ {
		pc.seq++
		if pc.pending[pc.seq] == nil {
			break
		}
	}
	pd.seq = pc.seq
	pc.pending[pd.seq] = pd
	pc.mu.Unlock()

	var buf [1500]byte
	size := p.opts.Size
	if size > len(buf) {
		size = len(buf)
	}
	n := marshalEcho(buf[:], k.v6, pc.id, pd.seq, &pd.token, size)
	p.arm(pd)
	sent, err := pc.send(buf[:n], target, func(t time.Time) {
		// Recorded under the lock before the system call: on loopback
		// the reply can be read before send returns.
		pc.mu.Lock()
		pd.sent = t
		pc.mu.Unlock()
	})
	if err != nil {
		if p.take(pd) {
			p.stats.sendErrs.Add(1)
			done(probe.Result{Sent: sent, Detail: sendDetail(err)})
		}
		return
	}
	p.stats.sent.Add(1)
}

func sendDetail(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// take removes pd from its conn's pending set and from the timer heap. It
// returns false if someone else (reply or timeout) already took it, so
// done runs exactly once.
func (p *Pinger) take(pd *pending) bool {
	pc := pd.pc
	pc.mu.Lock()
	if pc.pending[pd.seq] != pd {
		pc.mu.Unlock()
		return false
	}
	delete(pc.pending, pd.seq)
	pc.mu.Unlock()
	p.tmu.Lock()
	if pd.index >= 0 {
		heap.Remove(&p.timers, pd.index)
	}
	p.tmu.Unlock()
	return true
}

func (p *Pinger) read(pc *pconn) {
	defer p.wg.Done()
	handle := func(b []byte, ts time.Time) {
		if ts.IsZero() {
			ts = time.Now()
		}
		p.handle(pc, b, ts)
	}
	for {
		err := pc.readLoop(handle)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		select {
		case <-p.done:
			return
		default:
		}
	}
}

func (p *Pinger) handle(pc *pconn, b []byte, ts time.Time) {
	if pc.raw && !pc.v6 {
		var err error
		if b, err = stripIPv4(b); err != nil {
			p.stats.malformed.Add(1)
			return
		}
	}
	r, err := parseReply(b, pc.v6)
	if err != nil {
		if err == errNotReply {
			return // a raw socket may see other ICMP; not ours
		}
		p.stats.malformed.Add(1)
		return
	}
	// Ping sockets: the kernel rewrote the identifier and delivers only our
	// replies; raw sockets see every reply on the host.
	if pc.raw && r.ID != pc.id {
		return
	}
	pc.mu.Lock()
	pd := pc.pending[r.Seq]
	if pd == nil {
		pc.mu.Unlock()
		p.stats.unmatched.Add(1)
		return
	}
	if pd.token != r.Token {
		pc.mu.Unlock()
		p.stats.badToken.Add(1)
		return
	}
	delete(pc.pending, r.Seq)
	sent := pd.sent
	pc.mu.Unlock()
	p.tmu.Lock()
	if pd.index >= 0 {
		heap.Remove(&p.timers, pd.index)
	}
	p.tmu.Unlock()
	p.stats.replies.Add(1)
	rtt := ts.Sub(sent)
	if rtt < 0 {
		rtt = 0
	}
	pd.done(probe.Result{OK: true, Sent: sent, RTT: rtt})
}

// Close closes every socket; pending probes end as failures.
func (p *Pinger) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	var pcs []*pconn
	for _, pc := range p.conns {
		pcs = append(pcs, pc)
		pc.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	for _, pc := range pcs {
		pc.mu.Lock()
		var left []*pending
		for _, pd := range pc.pending {
			left = append(left, pd)
		}
		pc.pending = map[uint16]*pending{}
		pc.mu.Unlock()
		for _, pd := range left {
			pd.done(probe.Result{Sent: pd.sent, Detail: "pinger closed"})
		}
	}
	return nil
}
