package stamp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ReflectorOptions configure a Reflector. The zero value listens on
// [::]:862 (and IPv4 through v4-mapped addresses).
type ReflectorOptions struct {
	// Addr is the local address and port; a zero address means every
	// address, a zero port means DefaultPort.
	Addr netip.AddrPort
	// AnyPort makes a zero port mean "any free port" instead of 862, for
	// tests.
	AnyPort bool
	// SessionIdle is how long a session (sender address and port) is kept
	// without packets before its sequence counter is forgotten. Default 5m.
	SessionIdle time.Duration
	// MaxSessions bounds the session table; packets that would open a
	// session beyond it are dropped and counted. Default 4096.
	MaxSessions int
	// ClockEstimate gives the Error Estimate of our timestamps (S bit and
	// error); default KernelClockEstimate.
	ClockEstimate func() ErrorEstimate
	// Key, when set, makes the reflector authenticated (RFC 8762 §4.3.2):
	// it answers only test packets with a valid HMAC-SHA-256 made with
	// this key, and signs its answers. Unauthenticated test packets are
	// dropped and counted (Stats.Unauthenticated): the modes never mix.
	Key []byte
	// Now is the clock for T3 (and T2 when the kernel gives no timestamp)
	// and for session expiry. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// ReflectorStats are cumulative counters of a Reflector.
type ReflectorStats struct {
	Received  uint64 // test packets read
	Reflected uint64 // replies sent
	Malformed uint64 // packets dropped because they did not decode
	Overflow  uint64 // packets dropped because the session table was full
	// Authenticated reflectors only:
	Unauthenticated uint64 // dropped: no HMAC (an unauthenticated sender, or a short packet)
	BadHMAC         uint64 // dropped: an HMAC that does not verify (another key, or forged)
	Sessions        int    // sessions now in the table
}

// Reflector is a stateful STAMP Session-Reflector (RFC 8762 §4.3): it
// keeps its own sequence counter for each session, so that a sender can
// tell forward loss (gaps in the reflector's counter) from reverse loss.
// A session is the sender's address and UDP port.
type Reflector struct {
	opts ReflectorOptions
	conn *net.UDPConn
	now  func() time.Time
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[netip.AddrPort]*reflSession

	received, reflected, malformed, overflow atomic.Uint64
	unauth, badHMAC                          atomic.Uint64
	lastModeWarn                             atomic.Int64 // unix ns of the last "other mode" log line
	closeOnce                                sync.Once
	closeErr                                 error
}

type reflSession struct {
	next uint32
	last time.Time
}

// NewReflector opens the reflector's socket. Call Run to serve it.
func NewReflector(opts ReflectorOptions) (*Reflector, error) {
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = 5 * time.Minute
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 4096
	}
	if opts.ClockEstimate == nil {
		opts.ClockEstimate = KernelClockEstimate
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Key != nil && len(opts.Key) < MinKeyLen {
		return nil, fmt.Errorf("starting STAMP reflector: the key is %d bytes; authenticated mode needs at least %d", len(opts.Key), MinKeyLen)
	}
	addr, port := opts.Addr.Addr(), opts.Addr.Port()
	if port == 0 && !opts.AnyPort {
		port = DefaultPort
	}
	network, host := "udp", ""
	if addr.IsValid() {
		host = addr.String()
		if addr.Is4() || addr.Is4In6() {
			network = "udp4"
		} else {
			network = "udp6"
		}
	}
	conn, err := listenUDP(context.Background(), network, net.JoinHostPort(host, fmt.Sprint(port)), 0)
	if err != nil {
		return nil, fmt.Errorf("starting STAMP reflector: %w", err)
	}
	return &Reflector{
		opts:     opts,
		conn:     conn,
		now:      opts.Now,
		log:      opts.Logger,
		sessions: make(map[netip.AddrPort]*reflSession),
	}, nil
}

// Addr returns the address the reflector listens on.
func (r *Reflector) Addr() netip.AddrPort {
	return r.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Stats returns the reflector's counters.
func (r *Reflector) Stats() ReflectorStats {
	r.mu.Lock()
	n := len(r.sessions)
	r.mu.Unlock()
	return ReflectorStats{
		Received:  r.received.Load(),
		Reflected: r.reflected.Load(),
		Malformed: r.malformed.Load(),
		Overflow:  r.overflow.Load(),

		Unauthenticated: r.unauth.Load(),
		BadHMAC:         r.badHMAC.Load(),
		Sessions:        n,
	}
}

// Run reflects test packets until ctx ends or Close is called. It returns
// nil in both cases.
func (r *Reflector) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	oob := make([]byte, oobSize)
	out := make([]byte, 0, 64<<10)
	for {
		n, oobn, _, from, err := r.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Transient errors (ICMP errors surfacing as ECONNREFUSED on
			// some kernels) must not stop the reflector.
			r.log.Debug("STAMP reflector read", "err", err)
			continue
		}
		r.received.Add(1)
		t2, ttl, ok := parseOOB(oob[:oobn])
		if !ok {
			t2 = r.now()
		}
		var in SenderPacket
		if r.opts.Key != nil {
			in, err = DecodeSenderAuth(buf[:n], r.opts.Key)
		} else {
			in, err = DecodeSender(buf[:n])
		}
		if err != nil {
			switch {
			case errors.Is(err, ErrUnauthenticated), errors.Is(err, ErrShortAuth):
				r.unauth.Add(1)
				r.warnMode(from, "the sender is in unauthenticated mode (no HMAC): dropped; give its flow the same key-file, or remove this reflector's key-file")
			case errors.Is(err, ErrBadHMAC):
				r.badHMAC.Add(1)
				r.warnMode(from, "the test packet's HMAC does not verify (another key, or forged): dropped")
			default:
				r.malformed.Add(1)
				r.log.Debug("STAMP reflector dropped packet", "from", from, "err", err)
			}
			continue
		}
		seq, ok := r.nextSeq(from, r.now())
		if !ok {
			r.overflow.Add(1)
			continue
		}
		est := r.opts.ClockEstimate()
		stamp := func(t time.Time) Timestamp {
			if est.PTP {
				return PTPTimestamp(t)
			}
			return NTPTimestamp(t)
		}
		reply := ReflectorPacket{
			Seq:              seq,
			ErrorEstimate:    est,
			ReceiveTimestamp: stamp(t2),
			SenderSeq:        in.Seq,
			SenderTimestamp:  in.Timestamp,
			SenderErrorEst:   in.ErrorEstimate,
			SenderTTL:        ttl,
			Padding:          in.Padding,
		}
		reply.Timestamp = stamp(r.now()) // T3, as late as we can
		if r.opts.Key != nil {
			out = reply.AppendAuth(out[:0], r.opts.Key)
		} else {
			out = reply.Append(out[:0])
		}
		if _, err := r.conn.WriteToUDPAddrPort(out, from); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			r.log.Debug("STAMP reflector write", "to", from, "err", err)
			continue
		}
		r.reflected.Add(1)
	}
}

// warnMode logs a refused authenticated-mode packet at most once every
// 10 s (a flood must not flood the log; the counters count every one).
func (r *Reflector) warnMode(from netip.AddrPort, what string) {
	now := r.now().UnixNano()
	last := r.lastModeWarn.Load()
	if now-last < int64(10*time.Second) || !r.lastModeWarn.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn("STAMP reflector (authenticated mode): "+what, "from", from, "unauthenticated", r.unauth.Load(), "bad_hmac", r.badHMAC.Load())
}

// nextSeq returns the session's next reflector sequence number (starting
// at zero, RFC 8762 §4.3.1 stateful mode). ok is false when the session is
// new and the table is full even after expiring idle sessions.
func (r *Reflector) nextSeq(from netip.AddrPort, now time.Time) (uint32, bool) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[from]
	if s != nil && now.Sub(s.last) > r.opts.SessionIdle {
		s.next = 0 // idle too long: a new session from a reused port
	}
	if s == nil {
		if len(r.sessions) >= r.opts.MaxSessions {
			for k, v := range r.sessions {
				if now.Sub(v.last) > r.opts.SessionIdle {
					delete(r.sessions, k)
				}
			}
			if len(r.sessions) >= r.opts.MaxSessions {
				return 0, false
			}
		}
		s = &reflSession{}
		r.sessions[from] = s
	}
	s.last = now
	seq := s.next
	s.next++
	return seq, true
}

// Close stops the reflector and unblocks Run. It is safe to call more
// than once.
func (r *Reflector) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.conn.Close() })
	return r.closeErr
}
