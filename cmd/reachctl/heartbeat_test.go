package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/hbauth"
)

func TestSendHeartbeatsUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	n, err := sendHeartbeats(context.Background(), pc.LocalAddr().String(), false, []byte("HEARTBEAT"), nil, 5*time.Millisecond, 3)
	if err != nil || n != 3 {
		t.Fatalf("sent %d, %v", n, err)
	}
	buf := make([]byte, 100)
	for i := 0; i < 3; i++ {
		pc.SetReadDeadline(time.Now().Add(time.Second))
		k, _, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:k]) != "HEARTBEAT" {
			t.Fatalf("datagram %d: %q %v", i, buf[:k], err)
		}
	}
}

func TestSendHeartbeatsTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		var b bytes.Buffer
		buf := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for b.Len() < len("HB\nHB\n") {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.String()
	}()
	if n, err := sendHeartbeats(context.Background(), ln.Addr().String(), true, []byte("HB"), nil, 5*time.Millisecond, 2); err != nil || n != 2 {
		t.Fatalf("sent %d, %v", n, err)
	}
	if s := <-got; s != "HB\nHB\n" {
		t.Fatalf("received %q", s)
	}
}

func TestPrintHeartbeats(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC)
	last := now.Add(-1500 * time.Millisecond)
	st := apitype.HeartbeatStatus{
		Listeners: []apitype.HeartbeatListener{{Name: "ips1", Protocol: "udp", Listen: "192.0.2.10:5000", State: "failed", Count: 42,
			LastHeartbeat: &last, Timeout: "500ms", Attempts: 2, Reason: "2 of 2 windows of 500ms without a heartbeat"}},
		Groups: []apitype.HeartbeatGroup{{Name: "inspection", Listeners: []string{"ips1"}, Threshold: 1, Effective: "bypass",
			Since: now.Add(-time.Second), Reason: "1 of 1 listeners failed (threshold 1): ips1"}},
		Changed: apitype.BypassChanged{RemovedAddresses: []string{"192.0.2.50/24 on byp0"}, DownInterfaces: []string{"eth3"}},
	}
	var b bytes.Buffer
	printHeartbeats(&b, st, now)
	for _, want := range []string{"ips1", "failed", "42", "1.5s ago", "500ms×2", "inspection", "bypass", "1 of 1", "removed 192.0.2.50/24 on byp0", "down eth3"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSendSigned: with a key every heartbeat is signed with a fresh time,
// so the listener's replay check accepts each one.
func TestSendSigned(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	key := []byte("0123456789abcdef")
	if n, err := sendHeartbeats(context.Background(), pc.LocalAddr().String(), false, []byte("HEARTBEAT"), key, 5*time.Millisecond, 3); err != nil || n != 3 {
		t.Fatalf("sent %d, %v", n, err)
	}
	v := &hbauth.Verifier{Key: key, Payload: []byte("HEARTBEAT"), Window: time.Minute}
	buf := make([]byte, 512)
	for i := range 3 {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		src := netip.MustParseAddrPort(from.String()).Addr()
		if ok, reason := v.Check(src, buf[:n], time.Now()); !ok {
			t.Errorf("heartbeat %d %q refused: %s", i, buf[:n], reason)
		}
	}
}
