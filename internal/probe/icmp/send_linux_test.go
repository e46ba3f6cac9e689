package icmp

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/probe"
	"golang.org/x/sys/unix"
)

// batchRun sends reqs with one ProbeBatch from inside ns and waits for
// every result.
func batchRun(t *testing.T, ns *lab.NS, p *Pinger, reqs []probe.Request) []probe.Result {
	t.Helper()
	res := make([]probe.Result, len(reqs))
	var wg sync.WaitGroup
	wg.Add(len(reqs))
	done := make([]func(probe.Result), len(reqs))
	for i := range reqs {
		done[i] = func(r probe.Result) { res[i] = r; wg.Done() }
	}
	if err := ns.Do(func() error { p.ProbeBatch(reqs, done); return nil }); err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("not every probe of the batch reported")
	}
	return res
}

// A batch larger than one sendmmsg (64), to IPv4 and IPv6 targets mixed
// (two sockets), is sent and every reply matched to its request.
func TestProbeBatchSendsAndMatches(t *testing.T) {
	ns := targetNS(t)
	var targets []netip.Addr
	for i := 1; i <= 40; i++ {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:fffe::%x", i))
		if err := ns.AddAddr("lo", a.String()+"/128"); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, a, netip.MustParseAddr("203.0.113.8"))
	}
	waitAnswers(t, ns, targets[len(targets)-2].String())
	p := New(Options{})
	defer p.Close()
	// Open both sockets.
	batchRun(t, ns, p, []probe.Request{{Target: targets[0], Timeout: 3 * time.Second}, {Target: targets[1], Timeout: 3 * time.Second}})
	// A probe is counted before its result is reported, so the counts are
	// read once, right after the results. Meanwhile a reader samples the
	// counters: no sample may show more replies than sends.
	before := p.Stats()
	if before.Sent != 2 || before.Replies != 2 {
		t.Errorf("stats %+v after two answered probes", before)
	}
	stop := make(chan struct{})
	sampled := make(chan Stats, 1)
	go func() {
		var worst Stats // the first sample with more replies than sends
		for {
			select {
			case <-stop:
				sampled <- worst
				return
			default:
			}
			if s := p.Stats(); s.Replies > s.Sent && worst.Replies == 0 {
				worst = s
			}
			runtime.Gosched()
		}
	}()
	var reqs []probe.Request
	for len(reqs) < 150 {
		for _, a := range targets {
			reqs = append(reqs, probe.Request{Target: a, Timeout: 5 * time.Second})
		}
	}
	reqs = reqs[:150]
	res := batchRun(t, ns, p, reqs)
	close(stop)
	if w := <-sampled; w.Replies != 0 {
		t.Errorf("a sample of the counters had more replies than sends: %+v", w)
	}
	for i, r := range res {
		if !r.OK || r.RTT <= 0 || r.Sent.IsZero() {
			t.Errorf("request %d to %v: %+v", i, reqs[i].Target, r)
		}
	}
	s := p.Stats()
	if s.Sent-before.Sent != 150 || s.Replies-before.Replies != 150 || s.SendErrs != 0 || s.Unmatched != 0 || s.BadToken != 0 {
		t.Errorf("stats %+v (before %+v), want 150 more sent and replies, nothing else", s, before)
	}
	if n := p.Sockets(); n != 2 {
		t.Errorf("%d sockets, want one per family", n)
	}
}

// A request that the kernel refuses (no route) fails alone with its
// error; the requests before and after it in the same batch are sent and
// answered.
func TestProbeBatchPartialFailure(t *testing.T) {
	ns := targetNS(t)
	p := New(Options{})
	defer p.Close()
	ok, bad := netip.MustParseAddr("2001:db8:ffff::8"), netip.MustParseAddr("2001:db8:dead::1") // no route in the namespace
	batchRun(t, ns, p, []probe.Request{{Target: ok, Timeout: 3 * time.Second}})
	reqs := []probe.Request{{Target: ok}, {Target: ok}, {Target: bad}, {Target: ok}, {Target: bad}, {Target: ok}}
	for i := range reqs {
		reqs[i].Timeout = 5 * time.Second
	}
	res := batchRun(t, ns, p, reqs)
	for i, r := range res {
		if reqs[i].Target == bad {
			if r.OK || r.Detail != unix.ENETUNREACH.Error() {
				t.Errorf("request %d to %v (no route): %+v, want %q", i, bad, r, unix.ENETUNREACH.Error())
			}
		} else if !r.OK {
			t.Errorf("request %d to %v: %+v", i, ok, r)
		}
	}
	// Every probe is counted before its result is reported: read once.
	if s := p.Stats(); s.SendErrs != 2 || s.Sent != 5 {
		t.Errorf("stats %+v, want 2 send errors and 5 sent", s)
	}
}

// sendAll copes with what sendmmsg may answer: EINTR (again), fewer
// messages than asked (the rest in the next call), an error for one
// message (that one fails, the next call goes on after it). Send times are
// in send order.
func TestSendAllPartialBatches(t *testing.T) {
	ns := targetNS(t)
	p := New(Options{})
	defer p.Close()
	ok := netip.MustParseAddr("2001:db8:ffff::8")
	batchRun(t, ns, p, []probe.Request{{Target: ok, Timeout: 3 * time.Second}}) // open the socket
	real := sendmmsg
	t.Cleanup(func() { sendmmsg = real })
	var calls []int
	sendmmsg = func(fd int, hdrs []unix.Mmsghdr) (int, error) {
		calls = append(calls, len(hdrs))
		switch len(calls) {
		case 1:
			return 0, unix.EINTR
		case 2:
			return real(fd, hdrs[:1]) // one of ten
		case 3:
			return real(fd, hdrs[:3]) // three more
		case 4:
			return 0, unix.EPERM // the fifth fails
		}
		return real(fd, hdrs)
	}
	reqs := make([]probe.Request, 10)
	for i := range reqs {
		reqs[i] = probe.Request{Target: ok, Timeout: 5 * time.Second}
	}
	res := batchRun(t, ns, p, reqs)
	sendmmsg = real
	for i, r := range res {
		if i == 4 {
			if r.OK || r.Detail != unix.EPERM.Error() {
				t.Errorf("request 4: %+v, want failed with %q", r, unix.EPERM.Error())
			}
			continue
		}
		if !r.OK {
			t.Errorf("request %d: %+v", i, r)
		}
		if i > 0 && r.Sent.Before(res[i-1].Sent) {
			t.Errorf("request %d sent at %v, before request %d (%v)", i, r.Sent, i-1, res[i-1].Sent)
		}
	}
	if want := []int{10, 10, 9, 6, 5}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("sendmmsg called with %v messages, want %v", calls, want)
	}
}
