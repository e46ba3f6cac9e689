package appid

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedPrimary is the module of the seed's sunny-day example, byte for byte.
const seedPrimary = `{
  "module-name": "icmp-probe-internet",
  "duration": 86400,
  "continue-file-watch": true,
  "services": {
    "icmp-internet-broadband": [
      {
        "ip-prefix": "0.0.0.0/0"
      }
    ]
  }
}
`

func TestSeedFormat(t *testing.T) {
	m := Build("internet", "broadband", []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, nil)
	if got := string(m.Marshal()); got != seedPrimary {
		t.Errorf("got\n%s\nwant\n%s", got, seedPrimary)
	}
}

func TestWithdrawnAndTransport(t *testing.T) {
	tr := []Transport{{Protocol: "tcp", PortRange: []PortRange{{StartPort: 443, EndPort: 443}}}}
	m := Build("internet", "", []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, tr)
	want := `{
  "module-name": "icmp-probe-internet",
  "duration": 86400,
  "continue-file-watch": true,
  "services": {
    "dummy": [
      {
        "ip-prefix": "203.0.113.0/24",
        "transport": [
          {
            "protocol": "tcp",
            "port-range": [
              {
                "start-port": 443,
                "end-port": 443
              }
            ]
          }
        ]
      }
    ]
  }
}
`
	if got := string(m.Marshal()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteOnlyOnChange(t *testing.T) {
	dir := t.TempDir()
	m := Build("internet", "lte", []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, nil)
	changed, err := Write(dir, m)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	name := filepath.Join(dir, "icmp-probe-internet.json")
	st1, _ := os.Stat(name)
	changed, err = Write(dir, m)
	if err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v", changed, err)
	}
	st2, _ := os.Stat(name)
	if !os.SameFile(st1, st2) {
		t.Error("an unchanged module was rewritten")
	}
	changed, _ = Write(dir, Build("internet", "broadband", []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, nil))
	if !changed {
		t.Error("a new decision did not change the file")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestBuildPathsECMP(t *testing.T) {
	pr := []netip.Prefix{netip.MustParsePrefix("192.0.2.53/32")}
	m := BuildPaths("anycast", []string{"s1", "s3"}, pr, nil)
	got := string(m.Marshal())
	for _, want := range []string{`"icmp-anycast-s1": [`, `"icmp-anycast-s3": [`, `"ip-prefix": "192.0.2.53/32"`} {
		if !strings.Contains(got, want) {
			t.Errorf("module lacks %s:\n%s", want, got)
		}
	}
	if len(m.Services) != 2 {
		t.Errorf("services %v", m.Services)
	}
	if w := BuildPaths("anycast", nil, pr, nil); len(w.Services) != 1 || w.Services[Dummy] == nil {
		t.Errorf("withdrawn ecmp module: %v", w.Services)
	}
}
