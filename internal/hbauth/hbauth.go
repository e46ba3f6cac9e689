// Package hbauth is the signed heartbeat format: a heartbeat that only a
// holder of the shared key can make, and that cannot be replayed. Without
// it anyone who can reach a listener keeps bypass off by sending the plain
// payload. Standard library only: reachctl signs with it, the heartbeat
// feature verifies.
//
// Wire format (one datagram, or one line over TCP):
//
//	RHB1 <unix milliseconds> <hex HMAC-SHA-256> <payload>
//
// The HMAC covers "RHB1 <unix milliseconds> <payload>". A receiver accepts
// a heartbeat whose time is within its window of its own clock and later
// than the last one it accepted from the same source address.
package hbauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Magic starts every signed heartbeat.
const Magic = "RHB1"

// MinKeyLen is the shortest key accepted (bytes).
const MinKeyLen = 16

func mac(key []byte, ms int64, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "%s %d ", Magic, ms)
	h.Write(payload)
	return h.Sum(nil)
}

// Sign returns the signed heartbeat for payload at now.
func Sign(key, payload []byte, now time.Time) []byte {
	ms := now.UnixMilli()
	return fmt.Appendf(nil, "%s %d %x %s", Magic, ms, mac(key, ms, payload), payload)
}

// Verifier checks signed heartbeats for one listener. Not safe for
// concurrent use.
type Verifier struct {
	Key     []byte
	Payload []byte        // the payload the heartbeat must carry ("" : any)
	Window  time.Duration // accepted distance from the receiver's clock
	last    map[netip.Addr]int64
}

// Check verifies data from src at now; reason says why it was refused.
func (v *Verifier) Check(src netip.Addr, data []byte, now time.Time) (ok bool, reason string) {
	f := bytes.SplitN(data, []byte(" "), 4)
	if len(f) < 3 || string(f[0]) != Magic {
		return false, "not signed"
	}
	ms, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return false, "bad time"
	}
	got, err := hex.DecodeString(string(f[2]))
	if err != nil || len(got) != sha256.Size {
		return false, "bad signature"
	}
	var payload []byte
	if len(f) == 4 {
		payload = f[3]
	}
	if !hmac.Equal(got, mac(v.Key, ms, payload)) {
		return false, "bad signature"
	}
	if len(v.Payload) > 0 && !bytes.Equal(payload, v.Payload) {
		return false, "wrong payload"
	}
	if d := now.Sub(time.UnixMilli(ms)).Abs(); d > v.Window {
		return false, "outside the time window"
	}
	if v.last == nil {
		v.last = map[netip.Addr]int64{}
	}
	src = src.Unmap()
	if ms <= v.last[src] {
		return false, "replayed"
	}
	v.last[src] = ms
	// Entries older than the window can never match again: keep the map
	// as small as the set of live senders.
	if len(v.last) > 64 {
		for a, t := range v.last {
			if now.Sub(time.UnixMilli(t)) > v.Window {
				delete(v.last, a)
			}
		}
	}
	return true, ""
}
