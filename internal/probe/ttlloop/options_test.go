package ttlloop

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/linkplan"
)

func TestValidate(t *testing.T) {
	// "lo" exists in every namespace, MTU 65536.
	ok := Options{Interface: "lo", Loop: loop4, TTL: 254, Count: 10, Size: 1500}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	if err := (Options{Interface: "lo", Loop: loop6}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	odd := ok
	odd.TTL = 253
	err := odd.Validate()
	if !errors.Is(err, ErrOddTTL) || !strings.Contains(err.Error(), "neighbour") {
		t.Errorf("odd TTL: err = %v, want ErrOddTTL with the reason", err)
	}
	odd.AllowOddTTL = true
	if err := odd.Validate(); err != nil {
		t.Errorf("odd TTL allowed: %v", err)
	}

	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no interface", func(o *Options) { o.Interface = "" }, "interface: missing"},
		{"unknown interface", func(o *Options) { o.Interface = "nosuch0" }, "interface nosuch0"},
		{"no loop", func(o *Options) { o.Loop = netip.Addr{} }, "loop address: missing"},
		{"multicast loop", func(o *Options) { o.Loop = netip.MustParseAddr("224.0.0.1") }, "unicast"},
		{"ttl 1", func(o *Options) { o.TTL = 1 }, "ttl 1: must be 2..255"},
		{"ttl 256", func(o *Options) { o.TTL = 256 }, "ttl 256"},
		{"count", func(o *Options) { o.Count = linkplan.MaxCount + 1 }, "count"},
		{"tiny", func(o *Options) { o.Size = 30 }, "size 30: must be 36..65535"},
		{"negative speed", func(o *Options) { o.Fill, o.LinkSpeed = 0.2, -1 }, "link speed -1"},
		{"dscp 64", func(o *Options) { o.DSCP = 64 }, "dscp 64: must be 0..63"},
		{"load window", func(o *Options) { o.LoadWindow = -time.Second }, "load window"},
		{"sequential without max-loss", func(o *Options) { o.Sequential = true }, "until max-loss: max-loss 0%"},
		{"sequential confidence", func(o *Options) { o.Sequential, o.MaxLoss, o.Confidence = true, 0.01, 0.4 }, "confidence 40%"},
		{"fill 150%", func(o *Options) { o.Fill, o.LinkSpeed = 1.5, 1e9 }, "fill 150%"},
		{"interval", func(o *Options) { o.Interval = -time.Second }, "interval"},
	} {
		o := ok
		c.edit(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	// All problems at once.
	err = Options{TTL: 3, Size: 10}.Validate()
	if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
		t.Errorf("want 4 problems reported together, got %d:\n%v", n, err)
	}
}
