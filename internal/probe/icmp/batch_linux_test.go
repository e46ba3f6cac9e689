package icmp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/reachd/reachd/internal/probe"
	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestCmsgTimestamp(t *testing.T) {
	ts := make([]byte, 16)
	binary.NativeEndian.PutUint64(ts[0:], 1700000000)
	binary.NativeEndian.PutUint64(ts[8:], 123456789)
	want := time.Unix(1700000000, 123456789)
	good := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts)
	other := cmsg(unix.SOL_IPV6, unix.IPV6_HOPLIMIT, []byte{64, 0, 0, 0})
	broken := append([]byte(nil), good...)
	(*unix.Cmsghdr)(unsafe.Pointer(&broken[0])).SetLen(len(broken) + 8) // longer than the buffer
	for _, tc := range []struct {
		name string
		oob  []byte
		want time.Time
	}{
		{"timestamp", good, want},
		{"after another message", append(append([]byte(nil), other...), good...), want},
		{"none", other, time.Time{}},
		{"empty", nil, time.Time{}},
		{"truncated header", good[:4], time.Time{}},
		{"length past the end", broken, time.Time{}},
		{"short data", cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, ts[:8]), time.Time{}},
	} {
		if got := cmsgTimestamp(tc.oob); !got.Equal(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { cmsgTimestamp(good) }); n != 0 {
		t.Errorf("cmsgTimestamp allocates %v times per call, want 0", n)
	}
}

// TestBurstLargerThanBatch: replies of many targets queue up together and
// are read batchLen at a time; none may be lost or left waiting for a later
// packet (the reader parks after a short batch without a second recvmmsg).
func TestBurstLargerThanBatch(t *testing.T) {
	ns := targetNS(t)
	const n = 5*batchLen + 3
	for i := 1; i <= n; i++ {
		if err := ns.AddAddr("lo", fmt.Sprintf("2001:db8:fffe::%x/128", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitAnswers(t, ns, fmt.Sprintf("2001:db8:fffe::%x", n)) // fresh addresses: see waitAnswers
	p := New(Options{})
	defer p.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	wg.Add(n)
	err := ns.Do(func() error {
		for i := 1; i <= n; i++ {
			a := netip.MustParseAddr(fmt.Sprintf("2001:db8:fffe::%x", i))
			p.Probe(probe.Request{Target: a, Timeout: 3 * time.Second}, func(r probe.Result) {
				if !r.OK || r.RTT <= 0 {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%v: %+v", a, r))
					mu.Unlock()
				}
				wg.Done()
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d of %d probes failed: %v", len(failed), n, failed)
	}
	if st := p.Stats(); st.Replies != n || st.Timeouts != 0 {
		t.Errorf("stats %+v, want %d replies and no timeouts", st, n)
	}
}

// TestShortTimeoutAfterLongOnes: the expiry timer is only re-armed when a
// new deadline is earlier than the one it is set for. A short probe armed
// after long ones must still end on time.
func TestShortTimeoutAfterLongOnes(t *testing.T) {
	ns := targetNS(t)
	if err := ns.Sysctl("net/ipv4/icmp_echo_ignore_all", "1"); err != nil {
		t.Fatal(err)
	}
	p := New(Options{})
	defer p.Close()
	type res struct {
		r  probe.Result
		at time.Time
	}
	long := make(chan res, 3)
	short := make(chan res, 1)
	start := time.Now()
	err := ns.Do(func() error {
		for i := 0; i < 3; i++ {
			p.Probe(probe.Request{Target: netip.MustParseAddr("203.0.113.8"), Timeout: 2 * time.Second}, func(r probe.Result) { long <- res{r, time.Now()} })
		}
		p.Probe(probe.Request{Target: netip.MustParseAddr("203.0.113.8"), Timeout: 150 * time.Millisecond}, func(r probe.Result) { short <- res{r, time.Now()} })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := <-short
	if s.r.OK || s.r.Detail != "timeout" {
		t.Errorf("short probe: %+v, want a timeout", s.r)
	}
	if d := s.at.Sub(start); d < 150*time.Millisecond || d > time.Second {
		t.Errorf("short probe ended after %v, want about 150ms", d)
	}
	for i := 0; i < 3; i++ {
		l := <-long
		if d := l.at.Sub(start); l.r.OK || d < 2*time.Second || d > 4*time.Second {
			t.Errorf("long probe: %+v after %v, want a timeout after about 2s", l.r, d)
		}
	}
}
