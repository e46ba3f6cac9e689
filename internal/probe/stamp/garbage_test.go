package stamp

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"
)

// garbageReflector answers every test packet it reads on c with the
// replies kinds makes of it, and never with the real reflection.
func garbageReflector(t *testing.T, c *net.UDPConn, kinds func(in SenderPacket, raw []byte) [][]byte) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			in, err := DecodeSender(buf[:n])
			if err != nil {
				continue
			}
			for _, b := range kinds(in, buf[:n]) {
				c.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
}

// garbage is what a broken or hostile reflector answers to in: random
// bytes of random length, a truncated reflection, a reflection of a
// sequence number never sent, and one of in's sequence number that does
// not echo its timestamp.
func garbage(rng *rand.Rand, in SenderPacket) (malformed, unknown, forged [][]byte) {
	random := make([]byte, rng.IntN(BaseLen))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	good := ReflectorPacket{
		Seq: in.Seq, Timestamp: NTPTimestamp(time.Now()), ReceiveTimestamp: NTPTimestamp(time.Now()),
		SenderSeq: in.Seq, SenderTimestamp: in.Timestamp, SenderErrorEst: in.ErrorEstimate, SenderTTL: 64,
	}
	truncated := good.Append(nil)[:BaseLen-1-rng.IntN(BaseLen-1)]
	stranger := good
	stranger.SenderSeq += SentWindow + 1 + uint32(rng.IntN(1<<20))
	stranger.Padding = rng.IntN(200) // a wrong length: longer than anything we sent
	wrongTS := good
	wrongTS.SenderTimestamp ^= Timestamp(1 + rng.Uint64()>>1)
	return [][]byte{random, truncated}, [][]byte{stranger.Append(nil)}, [][]byte{wrongTS.Append(nil)}
}

// TestGarbageReflector: a reflector that answers every test packet with
// garbage (random bytes, truncated, wrong lengths, valid-looking replies
// for another sequence number or without our timestamp) gets no reply
// accepted; every one is counted by why it was refused, and the loss
// accounting is not moved by them.
func TestGarbageReflector(t *testing.T) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var want Rejected
	garbageReflector(t, c, func(in SenderPacket, _ []byte) [][]byte {
		m, u, f := garbage(rng, in)
		want.Malformed += uint64(len(m))
		want.Unknown += uint64(len(u))
		want.Forged += uint64(len(f))
		return append(append(m, u...), f...)
	})
	s := startSender(t, SenderOptions{Peer: c.LocalAddr().(*net.UDPAddr).AddrPort()})
	const pings = 50
	for i := range pings {
		if r := s.Ping(context.Background(), 50*time.Millisecond); r.Received {
			t.Fatalf("ping %d accepted a garbage reply: %+v", i, r)
		}
	}
	var got Rejected
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = s.Rejected(); got.Malformed+got.Unknown+got.Forged == 4*pings {
			break
		}
	}
	// A random datagram may happen to decode; then it is unknown, not
	// malformed. The forged ones are exactly those.
	if got.Forged != pings || got.Malformed+got.Unknown != 3*pings || got.Malformed < pings {
		t.Errorf("rejected %+v, want forged %d and %d malformed or unknown (sent %+v)", got, pings, 3*pings, want)
	}
	if l := s.Loss(); l.Received != 0 || l.Forward != 0 || l.Reverse != 0 || l.Sent != pings {
		t.Errorf("loss accounting moved by garbage: %+v", l)
	}
}

// TestRealReplyStillCountsAmongForgeries: forgeries before the real
// reflection do not stop it from being accepted.
func TestRealReplyStillCountsAmongForgeries(t *testing.T) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var seq uint32
	garbageReflector(t, c, func(in SenderPacket, _ []byte) [][]byte {
		m, u, f := garbage(rng, in)
		real := ReflectorPacket{
			Seq: seq, Timestamp: NTPTimestamp(time.Now()), ReceiveTimestamp: NTPTimestamp(time.Now()),
			SenderSeq: in.Seq, SenderTimestamp: in.Timestamp, SenderErrorEst: in.ErrorEstimate, SenderTTL: 64,
		}
		seq++
		return append(append(append(m, u...), f...), real.Append(nil))
	})
	s := startSender(t, SenderOptions{Peer: c.LocalAddr().(*net.UDPAddr).AddrPort()})
	for i := range 20 {
		if r := s.Ping(context.Background(), 2*time.Second); !r.Received {
			t.Fatalf("ping %d: the real reply was not accepted among forgeries: %v", i, r.Err)
		}
	}
	if l := s.Loss(); l.Received != 20 || l.Forward != 0 || l.Reverse != 0 {
		t.Errorf("loss %+v", l)
	}
}
