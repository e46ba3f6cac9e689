package hbauth

import (
	"net/netip"
	"testing"
	"time"
)

func TestSignAndCheck(t *testing.T) {
	key := []byte("0123456789abcdef0123")
	now := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v := &Verifier{Key: key, Payload: []byte("HEARTBEAT"), Window: 30 * time.Second}
	hb := Sign(key, []byte("HEARTBEAT"), now)
	steps := []struct {
		name   string
		src    netip.Addr
		data   []byte
		at     time.Time
		ok     bool
		reason string
	}{
		{"fresh", a, hb, now.Add(time.Second), true, ""},
		{"replayed", a, hb, now.Add(2 * time.Second), false, "replayed"},
		{"same beat from another sender", b, hb, now.Add(2 * time.Second), true, ""},
		{"newer", a, Sign(key, []byte("HEARTBEAT"), now.Add(time.Second)), now.Add(2 * time.Second), true, ""},
		{"too old", a, Sign(key, []byte("HEARTBEAT"), now.Add(-time.Minute)), now.Add(3 * time.Second), false, "outside the time window"},
		{"from the future", a, Sign(key, []byte("HEARTBEAT"), now.Add(time.Minute)), now.Add(3 * time.Second), false, "outside the time window"},
		{"wrong key", a, Sign([]byte("another key, 16+ bytes"), []byte("HEARTBEAT"), now.Add(4*time.Second)), now.Add(4 * time.Second), false, "bad signature"},
		{"wrong payload", a, Sign(key, []byte("HELLO"), now.Add(5*time.Second)), now.Add(5 * time.Second), false, "wrong payload"},
		{"plain payload", a, []byte("HEARTBEAT"), now.Add(5 * time.Second), false, "not signed"},
		{"tampered time", a, append([]byte("RHB1 9"), hb[6:]...), now.Add(5 * time.Second), false, "bad signature"},
		{"garbage", a, []byte("RHB1 x y z"), now, false, "bad time"},
	}
	for _, s := range steps {
		ok, reason := v.Check(s.src, s.data, s.at)
		if ok != s.ok || reason != s.reason {
			t.Errorf("%s: Check = %v %q, want %v %q", s.name, ok, reason, s.ok, s.reason)
		}
	}
}

func FuzzCheck(f *testing.F) {
	key := []byte("0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	f.Add(Sign(key, []byte("HEARTBEAT"), now))
	f.Add([]byte("RHB1 1 00 x"))
	f.Add([]byte("HEARTBEAT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := &Verifier{Key: key, Window: time.Hour}
		if ok, _ := v.Check(netip.MustParseAddr("192.0.2.1"), data, now); ok {
			// Only a correct signature passes: re-signing must give the same bytes.
			if ok2, _ := (&Verifier{Key: []byte("a different key!")}).Check(netip.MustParseAddr("192.0.2.1"), data, now); ok2 {
				t.Fatalf("%q verified under two keys", data)
			}
		}
	})
}
