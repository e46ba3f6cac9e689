package envimport

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/reachd/reachd/internal/config"
)

// load imports a .env file and parses the YAML it gives with reachd's own
// config loader: the output must be a valid config.
func load(t *testing.T, file string) (*config.Config, string, Problems) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env, probs := Parse(file, data)
	y := env.YAML()
	cfg, err := config.Parse(file+".yaml", []byte(y))
	if err != nil {
		t.Fatalf("the YAML does not load: %v\n%s", err, y)
	}
	return cfg, y, probs
}

type lsum struct {
	Name, Listen, Interface string
	Timeout                 time.Duration
	Attempts                int
	Down                    []string
}

func summary(cfg *config.Config) ([]lsum, int, []string, []string) {
	var ls []lsum
	for _, l := range cfg.Heartbeats.Listeners {
		ls = append(ls, lsum{l.Name, l.Listen, l.Interface, l.Timeout.D, l.Attempts, l.Bypass.DownInterfaces})
	}
	g := cfg.Heartbeats.Groups[0]
	var addrs []string
	for _, a := range g.Bypass.RemoveAddresses {
		addrs = append(addrs, a.Interface+" "+a.Addr.String())
	}
	return ls, g.FailedThreshold, addrs, g.Bypass.DownInterfaces
}

func TestSeedMinimal(t *testing.T) {
	cfg, y, probs := load(t, "testdata/seed-minimal.env")
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	ls, thr, addrs, down := summary(cfg)
	want := []lsum{
		{"hb0", "192.168.1.202:3000", "eth0", 3 * time.Second, 1, nil},
		{"hb1", "192.168.1.202:3100", "eth0", 3 * time.Second, 1, nil},
	}
	if d := cmp.Diff(want, ls); d != "" {
		t.Errorf("listeners (-want +got):\n%s\n%s", d, y)
	}
	if thr != 1 || !cmp.Equal(addrs, []string{"eth0 192.168.1.211", "eth0 192.168.1.212"}) || down != nil {
		t.Errorf("group: threshold %d, addresses %v, down %v\n%s", thr, addrs, down, y)
	}
}

func TestSeedLocalAndGlobal(t *testing.T) {
	cfg, y, probs := load(t, "testdata/seed-local-global.env")
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	ls, thr, addrs, down := summary(cfg)
	want := []lsum{
		{"hb0", "192.0.2.10:3000", "eth0", 3 * time.Second, 3, []string{"eth3", "eth4"}},
		{"hb1", "192.0.2.11:3100", "eth0", 3 * time.Second, 1, nil}, // shutdown 0: not acted on
		{"hb2", "[2001:db8::12]:3200", "eth0", 3 * time.Second, 1, nil},
	}
	if d := cmp.Diff(want, ls); d != "" {
		t.Errorf("listeners (-want +got):\n%s\n%s", d, y)
	}
	if thr != 2 || !cmp.Equal(addrs, []string{"eth0 192.0.2.211", "eth0 192.0.2.212"}) || !cmp.Equal(down, []string{"cubro0", "cubro1"}) {
		t.Errorf("group: threshold %d, addresses %v, down %v\n%s", thr, addrs, down, y)
	}
	if !strings.Contains(y, "LISTEN_CUBRO_IFS[1]=eth5 without LISTEN_SHUTDOWN_CUBRO_IFS_WHEN_BYPASS[1]=1") {
		t.Errorf("no note about hb1's interfaces:\n%s", y)
	}
	_ = netip.Addr{}
}

func TestMalformed(t *testing.T) {
	cfg, y, probs := load(t, "testdata/malformed.env")
	var got []string
	for _, p := range probs {
		got = append(got, p.Error())
	}
	want := []string{
		`testdata/malformed.env:1: LISTEN_HEARTBEAT_FAILED: "two" is not a number from 1 to 65535`,
		`testdata/malformed.env:4: "this line has no equals sign" is not KEY=VALUE`,
		`testdata/malformed.env:5: unknown key LISTEN_HB_PORTS; known keys: `,
		`testdata/malformed.env:6: LISTEN_HB_HOST needs an index, e.g. LISTEN_HB_HOST[0]=...`,
		`testdata/malformed.env:7: LISTEN_HB_HOST[2]: "192.0.2.300" is not an IP address`,
		`testdata/malformed.env:8: LISTEN_HB_PORT: "70000" is not a number from 1 to 65535`,
		`testdata/malformed.env:9: BYPASS_CARD_HOST[0] has no interface; set BYPASS_CARD_IFS`,
		`testdata/malformed.env:11: LISTEN_HB_HOST[4] has no LISTEN_HB_PORT[4]`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
	// What could be read still comes out: listener 0.
	if len(cfg.Heartbeats.Listeners) != 1 || cfg.Heartbeats.Listeners[0].Listen != "192.0.2.10:3000" {
		t.Errorf("listeners of the readable part:\n%s", y)
	}
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/seed-minimal.env", "testdata/seed-local-global.env", "testdata/malformed.env"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, probs := Parse("fuzz.env", data)
		y := env.YAML()
		if len(probs) == 0 {
			if _, err := config.Parse("fuzz.yaml", []byte(y)); err != nil {
				t.Fatalf("clean input gave YAML that does not load: %v\n%s\n%s", err, data, y)
			}
		}
	})
}
