package icmp

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestForgedReplyFlood: the target does not answer (echo ignored) while a
// forger floods echo replies for every sequence number of the pinger's
// identifier, with a wrong token, as fast as it can. Every probe must still
// time out on time, and the forgeries that hit a pending probe are counted
// as bad tokens (the rest as unmatched).
func TestForgedReplyFlood(t *testing.T) {
	ns := targetNS(t)
	if err := ns.Sysctl("net/ipv4/icmp_echo_ignore_all", "1"); err != nil {
		t.Fatal(err)
	}
	var forger int
	if err := ns.Do(func() (err error) {
		forger, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(forger)
	unix.SetsockoptTimeval(forger, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Learn the identifier and where to send (a stand-in for guessing
		// it: the point is that knowing id and sequence is not enough).
		buf := make([]byte, 1500)
		var id, seq0 uint16
		var size int
		var to unix.Sockaddr
		for to == nil {
			n, from, err := unix.Recvfrom(forger, buf, 0)
			if err != nil {
				return
			}
			icmp, err := stripIPv4(buf[:n])
			if err != nil || icmp[0] != typeEchoRequest4 {
				continue
			}
			id, seq0, size, to = binary.BigEndian.Uint16(icmp[4:]), binary.BigEndian.Uint16(icmp[6:]), len(icmp), from
		}
		reply := make([]byte, 128)
		var wrong Token
		// Every sequence number, the ones just after the first seen (the
		// probes to come) again and again: 64 of them, then one of the rest.
		for i, rest := 0, 0; ; i++ {
			seq := int(seq0) + i%64
			if i%64 == 63 {
				seq, rest = rest, (rest+1)&0xffff
			}
			select {
			case <-stop:
				return
			default:
			}
			m := marshalEcho(reply, false, id, uint16(seq&0xffff), &wrong, size)
			reply[0] = typeEchoReply4
			reply[2], reply[3] = 0, 0
			binary.BigEndian.PutUint16(reply[2:], checksum(reply[:m]))
			if unix.Sendto(forger, reply[:m], 0, to) == nil {
				sent.Add(1)
			}
		}
	}()
	p := New(Options{})
	defer p.Close()
	const probes, timeout = 10, 200 * time.Millisecond
	for i := range probes {
		start := time.Now()
		r := ping(t, ns, p, "203.0.113.8", timeout)
		took := time.Since(start)
		if r.OK {
			t.Fatalf("probe %d accepted a forged reply: %+v", i, r)
		}
		if took < timeout || took > timeout+time.Second {
			t.Errorf("probe %d ended after %v, timeout %v", i, took, timeout)
		}
	}
	close(stop)
	wg.Wait()
	s := p.Stats()
	t.Logf("%d forged replies sent; pinger stats %+v", sent.Load(), s)
	if sent.Load() < 1000 {
		t.Fatalf("only %d forgeries sent: the flood did not run", sent.Load())
	}
	if s.Replies != 0 || s.Timeouts != probes || s.BadToken < probes/2 {
		t.Errorf("stats %+v: want no reply accepted, %d timeouts, bad tokens counted", s, probes)
	}
}
