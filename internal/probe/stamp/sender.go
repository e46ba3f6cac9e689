package stamp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// SenderOptions configure a Sender.
type SenderOptions struct {
	// Peer is the reflector's address and port (port 0 means 862).
	Peer netip.AddrPort
	// Local optionally binds the session's socket to an address.
	Local netip.Addr
	// Mark, when not zero, sets SO_MARK on the socket so that the test
	// packets follow a path's fwmark routing rule.
	Mark int
	// Padding adds bytes after the base packet (44 bytes, or 112 in
	// authenticated mode).
	Padding int
	// Key, when set, makes the session authenticated (RFC 8762 §4.2.2):
	// test packets carry an HMAC-SHA-256 with this key, and replies are
	// accepted only with a valid one. An unauthenticated reflector's
	// answers are refused (Rejected.Unauthenticated): the modes never mix.
	Key []byte
	// ClockEstimate gives our Error Estimate; default KernelClockEstimate.
	ClockEstimate func() ErrorEstimate
	// Now is the clock for T1 (and T4 when the kernel gives no timestamp).
	Now func() time.Time
}

// Result is the outcome of one test packet. A lost packet is a Result
// with Received false, not an error.
type Result struct {
	Seq      uint32
	Received bool // a reply came back before the timeout
	// Err says why no reply was received (timeout, send error).
	Err error

	T1, T2, T3, T4 time.Time
	ReflectorSeq   uint32
	SenderTTL      uint8 // TTL / hop limit of our packet at the reflector

	// Forward is T2−T1 and Reverse T4−T3; they are only meaningful when
	// ClockSynced. RTT is (T4−T1)−(T3−T2), the round trip without the
	// reflector's dwell time, and is always meaningful.
	Forward, Reverse, RTT time.Duration
	// ClockSynced is true when both Error Estimates carry the S bit.
	ClockSynced bool

	// Loss is the session's cumulative loss after this ping, and
	// NewForwardLoss / NewReverseLoss / NewLate how much of it no earlier
	// Result reported: what this reply revealed, and what a late reply
	// revealed since the last Result. Summed over a session's Results
	// they equal Loss.
	Loss                           Loss
	NewForwardLoss, NewReverseLoss uint64
	NewLate                        uint64
}

// Loss counts a session's lost packets by direction. A packet that timed
// out is attributed to a direction only once a later reply shows whether
// the reflector's counter saw it (RFC 8762 §4.3.1 stateful mode); until
// then it is neither forward nor reverse loss.
type Loss struct {
	Sent     uint64 // test packets sent
	Received uint64 // replies received in time
	Forward  uint64 // packets the reflector never received
	Reverse  uint64 // replies the reflector sent that did not come back in time
	// Late counts replies that came back after their timeout. A late
	// reply is in Reverse too: the ping had already failed. So Reverse -
	// Late is what the way back really lost. (A second reply to one test
	// packet is neither: Rejected.Duplicate.)
	Late uint64
}

// Rejected counts replies a Sender dropped without using them. Only the
// reflector's own reflection of a test packet counts: it echoes the packet's
// sequence number and timestamp (T1, nanosecond-resolution, RFC 8762
// §4.3), which an off-path sender cannot guess, so a forged reply with the
// right addresses, ports and sequence number is still refused.
type Rejected struct {
	Malformed uint64 // did not decode as a reflector packet
	Unknown   uint64 // for a sequence number not among the last SentWindow sent (forged, or very late)
	Forged    uint64 // a sequence number we sent, but not the timestamp we sent it with
	Duplicate uint64 // a second reply to a test packet already answered
	// Authenticated sessions only:
	Unauthenticated uint64 // no HMAC: the reflector is in unauthenticated mode (or the reply is short)
	BadHMAC         uint64 // an HMAC that does not verify: another key, or forged
}

// SentWindow is how many recent test packets a Sender remembers to check
// replies against (a fixed-size ring: memory does not grow with replies).
const SentWindow = 1024

// sentPacket is what a Sender remembers of one test packet.
type sentPacket struct {
	seq      uint32
	ts       Timestamp
	ok       bool
	answered bool // a reply came (in time or late)
}

// Sender is one STAMP test session: a connected UDP socket to one
// reflector, so that only replies from the peer's 5-tuple are read;
// replies are matched to test packets by sequence number. Ping may be
// called from several goroutines; Run must be running to receive replies.
type Sender struct {
	opts SenderOptions
	conn *net.UDPConn
	now  func() time.Time

	mu      sync.Mutex
	seq     uint32
	pending map[uint32]chan reply
	acct    lossAccount
	// reported is the Loss the last Result carried (see Result.NewLate).
	reported Loss
	sent     [SentWindow]sentPacket
	reject   Rejected

	closeOnce sync.Once
	closeErr  error
}

type reply struct {
	pkt ReflectorPacket
	t4  time.Time
}

// NewSender opens the session's socket.
func NewSender(opts SenderOptions) (*Sender, error) {
	if opts.ClockEstimate == nil {
		opts.ClockEstimate = KernelClockEstimate
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	peer := opts.Peer
	if !peer.Addr().IsValid() {
		return nil, fmt.Errorf("STAMP sender: no peer address")
	}
	if peer.Port() == 0 {
		peer = netip.AddrPortFrom(peer.Addr(), DefaultPort)
	}
	if opts.Key != nil && len(opts.Key) < MinKeyLen {
		return nil, fmt.Errorf("STAMP sender to %v: the key is %d bytes; authenticated mode needs at least %d", peer, len(opts.Key), MinKeyLen)
	}
	network := "udp6"
	if peer.Addr().Is4() || peer.Addr().Is4In6() {
		network = "udp4"
		peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	}
	laddr := ""
	if opts.Local.IsValid() {
		laddr = net.JoinHostPort(opts.Local.String(), "0")
	}
	conn, err := dialUDP(context.Background(), network, laddr, peer.String(), opts.Mark)
	if err != nil {
		return nil, fmt.Errorf("STAMP sender to %v: %w", peer, err)
	}
	return &Sender{opts: opts, conn: conn, now: opts.Now, pending: make(map[uint32]chan reply)}, nil
}

// LocalAddr returns the session's local address and port.
func (s *Sender) LocalAddr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Loss returns the session's cumulative loss counters.
func (s *Sender) Loss() Loss {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acct.loss
}

// Rejected returns the counts of replies dropped so far.
func (s *Sender) Rejected() Rejected {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reject
}

// Run reads replies until ctx ends or Close is called; it returns nil then.
func (s *Sender) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	oob := make([]byte, oobSize)
	for {
		n, oobn, _, _, err := s.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// ECONNREFUSED from an ICMP port unreachable: the packet is
			// lost, which the pending Ping will report by timing out.
			continue
		}
		t4, _, ok := parseOOB(oob[:oobn])
		if !ok {
			t4 = s.now()
		}
		var p ReflectorPacket
		if s.opts.Key != nil {
			p, err = DecodeReflectorAuth(buf[:n], s.opts.Key)
		} else {
			p, err = DecodeReflector(buf[:n])
		}
		s.mu.Lock()
		if err != nil {
			switch {
			case errors.Is(err, ErrUnauthenticated), errors.Is(err, ErrShortAuth):
				s.reject.Unauthenticated++
			case errors.Is(err, ErrBadHMAC):
				s.reject.BadHMAC++
			default:
				s.reject.Malformed++
			}
			s.mu.Unlock()
			continue
		}
		switch sp := s.sent[p.SenderSeq%SentWindow]; {
		case !sp.ok || sp.seq != p.SenderSeq:
			s.reject.Unknown++
			s.mu.Unlock()
			continue
		case sp.ts != p.SenderTimestamp:
			s.reject.Forged++
			s.mu.Unlock()
			continue
		case sp.answered:
			s.reject.Duplicate++
			s.mu.Unlock()
			continue
		}
		s.sent[p.SenderSeq%SentWindow].answered = true
		ch := s.pending[p.SenderSeq]
		delete(s.pending, p.SenderSeq)
		if ch == nil {
			// Late: it still tells us what the reflector saw.
			s.acct.observe(p.SenderSeq, p.Seq, false)
		}
		s.mu.Unlock()
		if ch != nil {
			ch <- reply{pkt: p, t4: t4} // buffered, never blocks
		}
	}
}

// Ping sends one test packet and waits up to timeout (or until ctx ends)
// for its reply. It never returns an error: a lost packet is a Result
// with Received false.
func (s *Sender) Ping(ctx context.Context, timeout time.Duration) Result {
	est := s.opts.ClockEstimate()
	ch := make(chan reply, 1)
	s.mu.Lock()
	seq := s.seq
	s.seq++
	s.pending[seq] = ch
	s.acct.sent(seq)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, seq)
		s.mu.Unlock()
	}()

	t1 := s.now()
	ts := NTPTimestamp(t1)
	if est.PTP {
		ts = PTPTimestamp(t1)
	}
	s.mu.Lock()
	s.sent[seq%SentWindow] = sentPacket{seq: seq, ts: ts, ok: true}
	s.mu.Unlock()
	pkt := SenderPacket{Seq: seq, Timestamp: ts, ErrorEstimate: est, Padding: s.opts.Padding}
	res := Result{Seq: seq, T1: t1}
	var b []byte
	if s.opts.Key != nil {
		b = pkt.AppendAuth(nil, s.opts.Key)
	} else {
		b = pkt.Append(nil)
	}
	if _, err := s.conn.Write(b); err != nil {
		res.Err = fmt.Errorf("sending STAMP packet %d: %w", seq, err)
		s.mu.Lock()
		s.report(&res)
		s.mu.Unlock()
		return res
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return s.complete(res, est, r)
	case <-timer.C:
		res.Err = fmt.Errorf("no reply to STAMP packet %d within %v", seq, timeout)
	case <-ctx.Done():
		res.Err = fmt.Errorf("waiting for STAMP packet %d: %w", seq, ctx.Err())
	}
	s.mu.Lock()
	delete(s.pending, seq)
	select {
	case r := <-ch:
		// The reply came between the timeout and the delete: late, like
		// one the receiver finds no waiter for.
		s.acct.observe(r.pkt.SenderSeq, r.pkt.Seq, false)
	default:
	}
	s.report(&res)
	s.mu.Unlock()
	return res
}

// report puts the session's loss into res, with what no earlier Result
// carried; s.mu is held.
func (s *Sender) report(res *Result) {
	l := s.acct.loss
	res.Loss = l
	res.NewForwardLoss = l.Forward - s.reported.Forward
	res.NewReverseLoss = l.Reverse - s.reported.Reverse
	res.NewLate = l.Late - s.reported.Late
	s.reported = l
}

func (s *Sender) complete(res Result, est ErrorEstimate, r reply) Result {
	p := r.pkt
	t2, _ := p.ReceiveTimestamp.Time(p.ErrorEstimate.PTP) // checked by DecodeReflector
	t3, _ := p.Timestamp.Time(p.ErrorEstimate.PTP)
	res.Received = true
	res.T2, res.T3, res.T4 = t2, t3, r.t4
	res.ReflectorSeq = p.Seq
	res.SenderTTL = p.SenderTTL
	res.Forward = t2.Sub(res.T1)
	res.Reverse = r.t4.Sub(t3)
	res.RTT = r.t4.Sub(res.T1) - t3.Sub(t2)
	res.ClockSynced = p.ErrorEstimate.Synced && p.SenderErrorEst.Synced && est.Synced

	s.mu.Lock()
	s.acct.observe(p.SenderSeq, p.Seq, true)
	s.report(&res)
	s.mu.Unlock()
	return res
}

// Close closes the session's socket and unblocks Run. It is safe to call
// more than once.
func (s *Sender) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.conn.Close() })
	return s.closeErr
}
