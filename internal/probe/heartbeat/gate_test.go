package heartbeat

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/clock"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/hbauth"
)

func listenerConfig(t *testing.T, extra string) Listener {
	t.Helper()
	c, err := config.Parse("hb.yaml", []byte(fmt.Sprintf(`
heartbeats:
  listeners:
    - {name: a, listen: "127.0.0.1:0", protocol: %s}
  groups:
    - {name: g}
`, extra)))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Heartbeats.Listeners[0] // as the daemon hands it on
	return Listener{Name: l.Name, Protocol: l.Protocol, Listen: l.Listen, Interface: l.Interface, Payload: l.Payload,
		Timeout: l.Timeout.D, Attempts: l.Attempts, AllowFrom: l.AllowPrefixes, SharedKey: l.SharedKey, MaxSkew: l.MaxSkew.D}
}

type rejects struct {
	mu sync.Mutex
	m  map[string]int
}

func (r *rejects) add(reason string) { r.mu.Lock(); r.m[reason]++; r.mu.Unlock() }
func (r *rejects) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[reason]
}

// runGate starts a receiver for lc on loopback and returns its address,
// its events and its refusals.
func runGate(t *testing.T, lc Listener) (string, chan Event, *rejects) {
	t.Helper()
	rj := &rejects{m: map[string]int{}}
	events := make(chan Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Receive(ctx, lc, toChan(ctx, events), rj.add); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case e := <-events:
		if e.Bound == "" {
			t.Fatalf("first event %+v", e)
		}
		return e.Bound, events, rj
	case <-time.After(5 * time.Second):
		t.Fatal("not bound")
	}
	return "", nil, nil
}

// expectBeat waits for one heartbeat, after which no other is pending.
func expectBeat(t *testing.T, events chan Event, what string) {
	t.Helper()
	select {
	case e := <-events:
		if !e.Beat {
			t.Fatalf("%s: event %+v", what, e)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no heartbeat", what)
	}
	select {
	case e := <-events:
		t.Fatalf("%s: a second event %+v: something else counted", what, e)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestSignedHeartbeats: with key-file, plain payloads, replays and wrong
// keys are refused and counted; signed fresh heartbeats count, over UDP
// and over TCP lines.
func TestSignedHeartbeats(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hb.key")
	key := []byte("a shared key of 24 bytes")
	os.WriteFile(keyFile, append(key, '\n'), 0o600)
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			lc := listenerConfig(t, proto+", payload: HEARTBEAT, key-file: "+keyFile)
			addr, events, rj := runGate(t, lc)
			c, err := net.Dial(proto, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			send := func(b []byte) {
				if proto == "tcp" {
					b = append(append([]byte{}, b...), '\n')
				}
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			signed := hbauth.Sign(key, []byte("HEARTBEAT"), time.Now())
			send([]byte("HEARTBEAT"))                                                              // plain: anyone could send it
			send(hbauth.Sign([]byte("the wrong key, 16+ bytes"), []byte("HEARTBEAT"), time.Now())) // forged
			send(hbauth.Sign(key, []byte("HEARTBEAT"), time.Now().Add(-time.Hour)))                // old
			send(signed)
			expectBeat(t, events, "signed")
			send(signed) // replayed
			// The refusal is counted on the receiver's goroutine, which no
			// fixed sleep waits for: poll (bounded) until it is, watching
			// for the replay counted as a heartbeat meanwhile.
			clock.WaitUntil(5*time.Second, func() bool {
				select {
				case e := <-events:
					t.Fatalf("replay counted: %+v", e)
				default:
				}
				return rj.get("replayed") > 0
			})
			select {
			case e := <-events:
				t.Fatalf("replay counted: %+v", e)
			default:
			}
			for reason, want := range map[string]int{"not signed": 1, "bad signature": 1, "outside the time window": 1, "replayed": 1} {
				if got := rj.get(reason); got != want {
					t.Errorf("refused as %q: %d, want %d (all: %v)", reason, got, want, rj.m)
				}
			}
		})
	}
}

// TestAllowFrom: heartbeats from outside allow-from are ignored and
// counted (UDP datagrams, TCP connections); from inside they count.
func TestAllowFrom(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			addr, events, rj := runGate(t, listenerConfig(t, proto+", allow-from: [192.0.2.0/24]"))
			c, err := net.Dial(proto, addr)
			if err == nil {
				c.Write([]byte("HEARTBEAT\n"))
				c.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for rj.get("source not in allow-from") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("not refused")
				}
				time.Sleep(10 * time.Millisecond)
			}
			select {
			case e := <-events:
				t.Fatalf("a heartbeat from 127.0.0.1 counted: %+v", e)
			case <-time.After(50 * time.Millisecond):
			}
			addr, events, _ = runGate(t, listenerConfig(t, proto+", allow-from: [127.0.0.0/8, \"2001:db8::/32\"]"))
			c, err = net.Dial(proto, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("HEARTBEAT\n"))
			expectBeat(t, events, "allowed source")
		})
	}
}
