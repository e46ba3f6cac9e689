package icmp

import (
	"testing"
)

func TestMarshalParseRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var tok Token
		for i := range tok {
			tok[i] = byte(i * 7)
		}
		var b [64]byte
		n := marshalEcho(b[:], v6, 0xbeef, 42, &tok, 40)
		if n != 40 {
			t.Fatalf("length %d, want 40", n)
		}
		if !v6 && checksum(b[:n]) != 0 {
			t.Errorf("IPv4 checksum does not verify")
		}
		// Turn the request into the reply a peer sends back.
		if v6 {
			b[0] = typeEchoReply6
		} else {
			b[0] = typeEchoReply4
		}
		r, err := parseReply(b[:n], v6)
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != 0xbeef || r.Seq != 42 || r.Token != tok {
			t.Errorf("parsed %+v", r)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		v6   bool
		want error
	}{
		{"empty", nil, false, errShort},
		{"header only", []byte{0, 0, 0, 0, 0, 1, 0, 1}, false, errShort},
		{"echo request", make([]byte, 24), true, errNotReply},
		{"v6 reply on v4", append([]byte{typeEchoReply6}, make([]byte, 23)...), false, errNotReply},
	}
	for _, tt := range tests {
		if _, err := parseReply(tt.b, tt.v6); err != tt.want {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	var tok Token
	var b [24]byte
	marshalEcho(b[:], false, 1, 2, &tok, 0)
	b[0] = typeEchoReply4
	f.Add(b[:], false)
	f.Add([]byte{0x45, 0, 0, 20}, false)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		if inner, err := stripIPv4(data); err == nil {
			parseReply(inner, v6)
		}
		parseReply(data, v6)
	})
}
