package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFlowsDecode(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "flow-valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.StampReflector.Enabled || c.StampReflector.Addr != netip.MustParseAddrPort("0.0.0.0:8620") {
		t.Errorf("stamp-reflector %+v", c.StampReflector)
	}
	type view struct {
		ID                  string
		Peer                netip.AddrPort
		Local               netip.Addr
		Interval, FailDelay time.Duration
		Timeout             time.Duration
		Service, Path       string
	}
	var got []view
	for _, f := range c.Flows {
		got = append(got, view{f.ID, f.PeerAddr, f.LocalAddr, f.Interval.D, f.FailDelay.D, f.Timeout.D, f.PathService, f.PathName})
	}
	want := []view{
		{"flowping-alpha", netip.MustParseAddrPort("198.51.100.7:862"), netip.Addr{}, time.Second, 10 * time.Second, time.Second, "internet", "broadband"},
		// interval from flow-ping-interval, port 862 by default, a bare path name unique across services
		{"flowping-beta", netip.MustParseAddrPort("[2001:db8::7]:862"), netip.Addr{}, 500 * time.Millisecond, DefaultFlowFailDelay, 500 * time.Millisecond, "internet", "lte"},
		{"flowping-gamma", netip.MustParseAddrPort("198.51.100.8:862"), netip.MustParseAddr("192.0.2.1"), 500 * time.Millisecond, DefaultFlowFailDelay, 300 * time.Millisecond, "", ""},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("decoded flows (-want +got):\n%s", d)
	}
	o, k := c.Exporters.OpenTSDB, c.Exporters.Kafka
	if o == nil || o.URL != "http://192.0.2.20:4242" || o.Metric != "sdn.flow.latency" {
		t.Errorf("opentsdb %+v", o)
	}
	if k == nil || k.Topic != "kilda.flow.status" || k.SpoolDir != "/var/lib/reachd/kafka-spool" {
		t.Errorf("kafka %+v", k)
	}
}

// Nothing listens unless configured: no section, no reflector.
func TestFlowDefaultsListenNothing(t *testing.T) {
	c, err := Parse("t.yaml", []byte("flows: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StampReflector.Enabled || c.StampReflector.Addr.IsValid() || c.Exporters.OpenTSDB != nil || c.Exporters.Kafka != nil {
		t.Errorf("defaults enable something: %+v %+v", c.StampReflector, c.Exporters)
	}
	if c.FlowPingInterval.D != DefaultFlowPingInterval {
		t.Errorf("flow-ping-interval default %v", c.FlowPingInterval.D)
	}
	c, err = Parse("t.yaml", []byte("stamp-reflector: {enabled: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StampReflector.Addr != netip.MustParseAddrPort("[::]:862") {
		t.Errorf("enabled reflector listens on %v, want [::]:862", c.StampReflector.Addr)
	}
}

func TestInvalidFlowFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid-flow-fields.yaml", []string{
			`:9: stamp-reflector.listen: is set but the reflector is not enabled; add enabled: true, or remove listen`,
			`:13: flows[0].path: service "internet" has no path "dsl"; use one of its paths: broadband`,
			`:14: flows[1].id: flow "a" is already defined at flows[0]; flow ids must be unique`,
			`:15: flows[1].peer: "not-an-address" is not an IP address`,
			`:18: flows[2].port: 70000 is not a port`,
			`:20: flows[2].fail-delay: 1s is shorter than interval 2s`,
			`:23: flows[3].path: no service has a path "nowhere"`,
			`:26: exporters.opentsdb.url: "192.0.2.20:4242" must start with http:// or https://`,
			`:28: exporters.kafka.brokers[0]: "192.0.2.10" is not host:port`,
			`exporters.kafka: needs topic`,
		}},
		{"invalid-flow-ambiguous-path.yaml", []string{
			`:23: flows[2].pathh: unknown key "pathh"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("err = %v, want Errors", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors lack %q:\n%v", w, err)
				}
			}
			if len(es) != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%v", len(es), len(tt.want), err)
			}
		})
	}
	// Without the typo, the path problems show.
	data := strings.Replace(readFile(t, "invalid-flow-ambiguous-path.yaml"), "pathh", "path", 1)
	_, err := Parse("t.yaml", []byte(data))
	for _, w := range []string{
		`t.yaml:17: flows[0].path: path "broadband" exists in services internet, intranet; say which one, e.g. path: internet/broadband`,
		`t.yaml:20: flows[1].path: no service is named "voip"; use SERVICE/PATH with one of: internet, intranet`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A flow's and the reflector's key-file are read like the heartbeat's: a
// world-readable or short key is refused with the file, line and key.
func TestStampKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, key string, mode os.FileMode) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(key), mode)
		os.Chmod(f, mode)
		return f
	}
	cfg := func(refl, flow string) string {
		return "stamp-reflector:\n  enabled: true\n  listen: 127.0.0.1:8620\n  key-file: " + refl +
			"\nflows:\n  - id: a\n    peer: 198.51.100.7\n    key-file: " + flow + "\n"
	}
	good := write("good.key", "0123456789abcdef0123\n", 0o600)
	open := write("open.key", "0123456789abcdef0123", 0o644)
	short := write("short.key", "short", 0o600)
	_, err := Parse("f.yaml", []byte(cfg(open, short)))
	for _, want := range []string{
		"f.yaml:4: stamp-reflector.key-file: " + open + " is readable by every user",
		"f.yaml:8: flows[0].key-file: the key in " + short + " is 5 bytes; use at least 16",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	c, err := Parse("f.yaml", []byte(cfg(good, good)))
	if err != nil {
		t.Fatal(err)
	}
	if c.StampReflector.Key != "0123456789abcdef0123" || c.Flows[0].Key != "0123456789abcdef0123" {
		t.Errorf("keys %q %q", c.StampReflector.Key, c.Flows[0].Key)
	}
}
