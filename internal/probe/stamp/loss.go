package stamp

// lossAccount splits a session's loss into forward and reverse from the
// reflector's own sequence numbers (RFC 8762 §4.3.1, stateful mode).
//
// A stateful reflector numbers its replies in a session from zero, so a
// reply (sender seq s, reflector seq r) says: of the s+1 packets we sent up
// to s, the reflector received r+1. Taking the reply with the highest r
// seen so far:
//
//	forward loss = (s+1) − (r+1)              packets that never reached it
//	reverse loss = (r+1) − replies received   replies that never came back
//
// A stateless reflector copies s into r; then every loss looks like
// reverse loss. When r goes backwards while s goes forwards, the reflector
// forgot the session (restart or idle expiry): the counts so far are kept
// and a new epoch starts at that reply.
type lossAccount struct {
	loss Loss

	started  bool
	base     uint32 // sender seq the reflector's counter 0 corresponds to
	hiSender uint32 // sender seq of the reply with the highest r
	hiRefl   uint32 // highest r
	recv     uint64 // replies received in time in this epoch
	// committed loss from earlier epochs
	fwd0, rev0 uint64
}

func (a *lossAccount) sent(seq uint32) { a.loss.Sent++ }

// observe records a reply; inTime says it arrived before its timeout.
func (a *lossAccount) observe(s, r uint32, inTime bool) {
	switch {
	case !a.started:
		a.started = true
		a.base = 0
		a.hiSender, a.hiRefl = s, r
	case r > a.hiRefl:
		a.hiSender, a.hiRefl = s, r
	case r < a.hiRefl && s > a.hiSender:
		// The reflector restarted its counter: commit and start over,
		// assuming nothing was lost in the part we cannot see.
		a.fwd0, a.rev0 = a.loss.Forward, a.loss.Reverse
		a.base = s - r
		a.hiSender, a.hiRefl = s, r
		a.recv = 0
	}
	if inTime {
		a.recv++
		a.loss.Received++
	} else {
		a.loss.Late++
	}
	sentUpTo := uint64(a.hiSender-a.base) + 1
	reflected := uint64(a.hiRefl) + 1
	var fwd, rev uint64
	if sentUpTo > reflected {
		fwd = sentUpTo - reflected
	}
	if reflected > a.recv {
		rev = reflected - a.recv
	}
	// Cumulative counters only grow (a reordered reply may briefly make
	// the estimate smaller).
	a.loss.Forward = max(a.loss.Forward, a.fwd0+fwd)
	a.loss.Reverse = max(a.loss.Reverse, a.rev0+rev)
}
