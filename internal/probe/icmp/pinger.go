package icmp

import (
	"container/heap"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
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

	// Requests wait in queue for the socket's sender goroutine, which
	// sends them with sendmmsg. The caller (the engine's goroutine) only
	// queues them: a sendmmsg of 64 echo requests takes hundreds of
	// microseconds (on a veth the targets' replies are made inside it),
	// and the engine's own work should not wait for that, nor the sends
	// of one socket for another's.
	qmu     sync.Mutex
	queue   []job
	qclosed bool // set by Close: nothing more is queued
	qwake   chan struct{}
}

// job is one queued request and its callback.
type job struct {
	req  probe.Request
	done func(probe.Result)
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
	// sending is set (under pc.mu) until the send returned and sent holds
	// the send time; a reply read meanwhile is kept in replied/replyAt
	// and reported by the sender.
	sending bool
	replied bool
	replyAt time.Time
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
	// Replies before Sent: a probe sent and answered between the two loads
	// must not show as more replies than sends.
	replies := p.stats.replies.Load()
	return Stats{
		Sent: p.stats.sent.Load(), Replies: replies, BadToken: p.stats.badToken.Load(),
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

// getConn returns the socket for k, opening it on first use.
func (p *Pinger) getConn(k connKey) (*pconn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed
	}
	if pc := p.conns[k]; pc != nil {
		return pc, nil
	}
	c, err := openConn(k.v6, k.mark, k.ifname, !p.opts.Unprivileged)
	if err != nil {
		return nil, err
	}
	pc := &pconn{conn: c, pending: map[uint16]*pending{}, qwake: make(chan struct{}, 1)}
	var idb [4]byte
	p.rng.Read(idb[:])
	pc.id = uint16(idb[0])<<8 | uint16(idb[1])
	pc.seq = uint16(idb[2])<<8 | uint16(idb[3])
	if !c.raw {
		pc.id = c.port
	}
	p.conns[k] = pc
	p.wg.Add(2)
	go p.read(pc)
	go p.sender(pc)
	return pc, nil
}

// Probe sends one echo request to req.Target and calls done with the
// outcome: the reply's RTT, or a failure after req.Timeout.
func (p *Pinger) Probe(req probe.Request, done func(probe.Result)) {
	p.ProbeBatch([]probe.Request{req}, []func(probe.Result){done})
}

// ProbeBatch queues every request like Probe does and returns: each
// socket's (family, mark, interface) sender goroutine sends its requests
// with one sendmmsg(2) per up to 64 of them; done[i] reports reqs[i]. The
// socket is opened here, in the caller's network namespace.
func (p *Pinger) ProbeBatch(reqs []probe.Request, done []func(probe.Result)) {
	if len(reqs) == 1 {
		p.queueGroup(keyOf(reqs[0]), reqs, done, []int{0})
		return
	}
	var keys []connKey
	for _, r := range reqs {
		if k := keyOf(r); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	idx := make([]int, 0, len(reqs))
	for _, k := range keys {
		idx = idx[:0]
		for i, r := range reqs {
			if keyOf(r) == k {
				idx = append(idx, i)
			}
		}
		p.queueGroup(k, reqs, done, idx)
	}
}

func keyOf(r probe.Request) connKey {
	return connKey{v6: r.Target.Unmap().Is6(), mark: r.Mark, ifname: r.Interface}
}

// queueGroup queues reqs[i] for every i in idx on socket k.
func (p *Pinger) queueGroup(k connKey, reqs []probe.Request, done []func(probe.Result), idx []int) {
	pc, err := p.getConn(k)
	if err != nil {
		p.fail(idx, done, err)
		return
	}
	pc.qmu.Lock()
	if pc.qclosed {
		pc.qmu.Unlock()
		p.fail(idx, done, errClosed)
		return
	}
	for _, i := range idx {
		pc.queue = append(pc.queue, job{reqs[i], done[i]})
	}
	pc.qmu.Unlock()
	select {
	case pc.qwake <- struct{}{}:
	default: // already signalled
	}
}

// fail reports done[i] for every i in idx as not sent, with err.
func (p *Pinger) fail(idx []int, done []func(probe.Result), err error) {
	now := time.Now()
	for _, i := range idx {
		p.stats.sendErrs.Add(1)
		done[i](probe.Result{Sent: now, Detail: err.Error()})
	}
}

// keepJobs bounds the queue slices a sender keeps for reuse: a bigger one
// (every target due at once at start-up) is let go after use.
const keepJobs = 1 << 14

// sender sends what is queued on pc, everything queued at once in
// batches of up to sendLen, until the Pinger closes.
func (p *Pinger) sender(pc *pconn) {
	defer p.wg.Done()
	var jobs []job
	for {
		select {
		case <-p.done:
			return
		case <-pc.qwake:
		}
		select {
		case <-p.done: // closing: Close reports what is queued
			return
		default:
		}
		if cap(jobs) > keepJobs {
			jobs = nil // a burst (start-up) made it big: let it go
		}
		pc.qmu.Lock()
		jobs, pc.queue = pc.queue, jobs[:0]
		pc.qmu.Unlock()
		for rest := jobs; len(rest) > 0; {
			n := min(len(rest), sendLen)
			p.sendJobs(pc, rest[:n])
			rest = rest[n:]
		}
		clear(jobs) // let the callbacks go
	}
}

// sendJobs sends up to sendLen queued requests with sendmmsg.
func (p *Pinger) sendJobs(pc *pconn, jobs []job) {
	size := min(p.opts.Size, maxSize)
	b := sendBatches.Get().(*sendBatch)
	defer sendBatches.Put(b)
	b.n = len(jobs)
	p.mu.Lock()
	for j := range jobs {
		p.rng.Read(b.toks[j][:])
	}
	p.mu.Unlock()
	// The deadlines are armed before the send so that a fast reply
	// always finds its timer to cancel; a reply read before the send
	// returned waits in its pending (sending) for the send time.
	now := time.Now()
	pc.mu.Lock()
	for j, jb := range jobs {
		target := jb.req.Target.Unmap()
		pd := &pending{pc: pc, token: b.toks[j], target: target, done: jb.done, index: -1,
			sending: true, sent: now, deadline: now.Add(jb.req.Timeout)}
		for n := 0; n < 1<<16; n++ {
			pc.seq++
			if pc.pending[pc.seq] == nil {
				break
			}
		}
		pd.seq = pc.seq
		pc.pending[pd.seq] = pd
		b.pds[j] = pd
		n := marshalEcho(b.bufs[j][:], pc.v6, pc.id, pd.seq, &pd.token, size)
		b.set(j, target, n)
	}
	pc.mu.Unlock()
	p.armAll(b.pds[:b.n])
	pc.sendAll(b)
	// The sends are counted under the lock a reply is matched under, and a
	// reply read during the send is counted here, after its send: a scrape
	// never sees more replies than sends (loss = 1 - replies/sent stays
	// within 0..1), and a caller's result never comes before its count.
	pc.mu.Lock()
	for j, pd := range b.pds[:b.n] {
		pd.sending = false
		pd.sent = b.sent[j]
		if b.errs[j] == nil {
			p.stats.sent.Add(1)
		}
		if pd.replied {
			p.stats.replies.Add(1)
		}
	}
	pc.mu.Unlock()
	for j, pd := range b.pds[:b.n] {
		switch {
		case b.errs[j] != nil:
			if p.take(pd) {
				p.stats.sendErrs.Add(1)
				pd.done(probe.Result{Sent: pd.sent, Detail: sendDetail(b.errs[j])})
			}
		case pd.replied:
			pd.done(probe.Result{OK: true, Sent: pd.sent, RTT: max(pd.replyAt.Sub(pd.sent), 0)})
		}
		b.pds[j] = nil
	}
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
	sent, sending := pd.sent, pd.sending
	if sending {
		pd.replied, pd.replyAt = true, ts
	}
	pc.mu.Unlock()
	p.tmu.Lock()
	if pd.index >= 0 {
		heap.Remove(&p.timers, pd.index)
	}
	p.tmu.Unlock()
	if sending {
		return // the sender counts and reports it once it knows the send time
	}
	p.stats.replies.Add(1)
	rtt := ts.Sub(sent)
	if rtt < 0 {
		rtt = 0
	}
	pd.done(probe.Result{OK: true, Sent: sent, RTT: rtt})
}

// Close closes every socket; pending and queued probes end as failures.
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
		pc.qmu.Lock()
		queued := pc.queue
		pc.queue, pc.qclosed = nil, true
		pc.qmu.Unlock()
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
		now := time.Now()
		for _, jb := range queued {
			jb.done(probe.Result{Sent: now, Detail: "pinger closed"})
		}
	}
	return nil
}
