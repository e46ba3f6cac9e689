package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/defaults"
)

// Flow defaults (seed document "Flow pings": flow.ping.interval and
// flow.ping.fail.delay).
// They are internal/defaults', which the flow feature and the STAMP prober
// fall back to as well.
const (
	DefaultFlowPingInterval = defaults.FlowPingInterval
	DefaultFlowFailDelay    = defaults.FlowFailDelay
	DefaultStampPort        = defaults.StampPort // RFC 8762 §4.1
	DefaultOpenTSDBMetric   = "sdn.flow.latency"
)

// DefaultStampListen is the reflector's default listen address: every
// address (IPv4 too, v4-mapped) on the STAMP port.
var DefaultStampListen = net.JoinHostPort("::", strconv.Itoa(DefaultStampPort))

// StampReflector runs reachd as an RFC 8762 session-reflector (stateful
// mode) so that peers can measure flows to this host. It listens only when
// enabled: nothing listens beyond loopback unless configured.
type StampReflector struct {
	Enabled bool `yaml:"enabled"`
	// Listen is host:port; default [::]:862 (IPv4 too, v4-mapped).
	Listen string `yaml:"listen"`
	// KeyFile, when set, makes the reflector authenticated (RFC 8762
	// §4.3.2): it answers only test packets signed with this shared key
	// (HMAC-SHA-256), and drops and counts unauthenticated ones.
	KeyFile string `yaml:"key-file"`

	// Filled by validate.
	Addr netip.AddrPort `yaml:"-"`
	Key  string         `yaml:"-"` // the key's bytes (a string keeps the struct comparable)
}

// Flow is one measured flow: STAMP pings to a peer's reflector every
// Interval; failed after FailDelay without a successful ping.
type Flow struct {
	ID   string `yaml:"id"`
	Peer string `yaml:"peer"`
	// Port of the peer's reflector; default 862.
	Port      int      `yaml:"port"`
	Interval  Duration `yaml:"interval"`
	FailDelay Duration `yaml:"fail-delay"`
	// Timeout for a periodic ping's reply; default the smaller of
	// interval and 2s.
	Timeout Duration `yaml:"timeout"`
	// Path is "SERVICE/PATH" (or a path name unique across services):
	// the pings carry that path's fwmark.
	Path string `yaml:"path"`
	// Local optionally binds the flow's socket to a source address.
	Local string `yaml:"local"`
	// KeyFile, when set, makes the flow's session authenticated (RFC 8762
	// §4.2.2) with this shared key; the peer's reflector needs the same.
	KeyFile string `yaml:"key-file"`

	// Filled by validate.
	PeerAddr    netip.AddrPort `yaml:"-"`
	LocalAddr   netip.Addr     `yaml:"-"`
	PathService string         `yaml:"-"`
	PathName    string         `yaml:"-"`
	Key         string         `yaml:"-"`
}

// Exporters are the optional destinations of flow measurements and
// events. Prometheus needs no section: flow metrics are on metrics.listen.
type Exporters struct {
	OpenTSDB *OpenTSDB `yaml:"opentsdb"`
	Kafka    *Kafka    `yaml:"kafka"`
}

// OpenTSDB sends flow latencies to an OpenTSDB HTTP API (/api/put).
type OpenTSDB struct {
	URL string `yaml:"url"`
	// Metric is the metric name; default sdn.flow.latency (seed).
	Metric string `yaml:"metric"`
	// Buffer bounds the points waiting to be sent; default 10000.
	Buffer int `yaml:"buffer"`
}

// Kafka sends the seed's PingReport on fail-delay and on recovery.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	// Topic is the seed's kafka.topic.flow.status.
	Topic string `yaml:"topic"`
	// SpoolDir keeps reports until the brokers acknowledge them; default
	// STATE-DIR/kafka-spool.
	SpoolDir string `yaml:"spool-dir"`
}

// flows checks and fills stamp-reflector, flows, flow-ping-interval and
// exporters; services must be validated first (flows name their paths).
func (c *checker) flows(cfg *Config) {
	r := &cfg.StampReflector
	r.Addr = netip.AddrPort{}
	if r.Listen != "" && !r.Enabled {
		c.add("stamp-reflector.listen", "is set but the reflector is not enabled; add enabled: true, or remove listen")
	}
	if r.KeyFile != "" && !r.Enabled {
		c.add("stamp-reflector.key-file", "is set but the reflector is not enabled; add enabled: true, or remove key-file")
	}
	r.Key = ""
	if r.Enabled {
		r.Key = string(c.secretKey("stamp-reflector.key-file", r.KeyFile))
	}
	if r.Enabled {
		if r.Listen == "" {
			r.Listen = DefaultStampListen
		}
		if ap, err := parseListen(r.Listen); err != nil {
			c.add("stamp-reflector.listen", "%q %v; write e.g. \"[::]:862\", \"0.0.0.0:862\" or 192.0.2.1:862", r.Listen, err)
		} else {
			r.Addr = ap
		}
	}
	c.duration("flow-ping-interval", &cfg.FlowPingInterval, DefaultFlowPingInterval)
	if cfg.FlowPingInterval.bad == "" && cfg.FlowPingInterval.D <= 0 {
		c.add("flow-ping-interval", "must be more than 0; write e.g. 1s")
	}
	ids := map[string]int{}
	for i := range cfg.Flows {
		f := &cfg.Flows[i]
		fp := fmt.Sprintf("flows[%d]", i)
		if f.ID == "" {
			c.add(fp+".id", "every flow needs an id; add id: ...")
		} else if j, dup := ids[f.ID]; dup {
			c.add(fp+".id", "flow %q is already defined at flows[%d]; flow ids must be unique", f.ID, j)
		} else if strings.ContainsAny(f.ID, "/ \t") {
			c.add(fp+".id", "%q may not contain '/' or spaces: it is part of the API's URL /flows/{flow_id}/ping", f.ID)
		} else {
			ids[f.ID] = i
		}
		f.PeerAddr = netip.AddrPort{}
		port := f.Port
		if port == 0 {
			port = DefaultStampPort
		} else if port < 1 || port > 65535 {
			c.add(fp+".port", "%d is not a port; use 1-65535 (the peer's reflector, default 862)", f.Port)
		}
		if a, err := netip.ParseAddr(f.Peer); err != nil || a.Zone() != "" {
			c.add(fp+".peer", "%q is not an IP address; write the peer's reflector address, e.g. 198.51.100.7", f.Peer)
		} else if a = a.Unmap(); a.IsUnspecified() || a.IsMulticast() {
			c.add(fp+".peer", "%v is not a unicast address; name the peer's reflector", a)
		} else {
			f.PeerAddr = netip.AddrPortFrom(a, uint16(port))
		}
		f.LocalAddr = netip.Addr{}
		if f.Local != "" {
			if a, err := netip.ParseAddr(f.Local); err != nil {
				c.add(fp+".local", "%q is not an IP address; write a source address of this host or remove local", f.Local)
			} else if f.PeerAddr.IsValid() && a.Unmap().Is4() != f.PeerAddr.Addr().Is4() {
				c.add(fp+".local", "%v and peer %v are of different address families", a, f.PeerAddr.Addr())
			} else {
				f.LocalAddr = a.Unmap()
			}
		}
		c.duration(fp+".interval", &f.Interval, cfg.FlowPingInterval.D)
		c.duration(fp+".fail-delay", &f.FailDelay, DefaultFlowFailDelay)
		if f.Interval.bad == "" && f.Interval.D <= 0 {
			c.add(fp+".interval", "must be more than 0; write e.g. 1s")
		}
		if f.Interval.bad == "" && f.FailDelay.bad == "" && f.FailDelay.D < f.Interval.D {
			c.add(fp+".fail-delay", "%v is shorter than interval %v: the flow would fail between two pings; raise fail-delay (e.g. 10 × interval)", f.FailDelay.D, f.Interval.D)
		}
		if f.Timeout.bad != "" {
			c.add(fp+".timeout", "%s", f.Timeout.bad)
		} else if !f.Timeout.set {
			f.Timeout = Duration{D: min(f.Interval.D, 2*time.Second), set: true}
		} else if f.Timeout.D <= 0 {
			c.add(fp+".timeout", "must be more than 0; write e.g. 500ms")
		}
		f.Key = string(c.secretKey(fp+".key-file", f.KeyFile))
		f.PathService, f.PathName = "", ""
		if f.Path != "" {
			c.flowPath(fp, cfg, f)
		}
	}
	if o := cfg.Exporters.OpenTSDB; o != nil {
		if o.URL == "" {
			c.add("exporters.opentsdb", "needs url: the server's base URL, e.g. http://127.0.0.1:4242 (points go to /api/put)")
		} else if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
			c.add("exporters.opentsdb.url", "%q must start with http:// or https://", o.URL)
		}
		if o.Metric == "" {
			o.Metric = DefaultOpenTSDBMetric
		}
		if o.Buffer < 0 {
			c.add("exporters.opentsdb.buffer", "%d must be 1 or more (points kept while the server is away; default 10000)", o.Buffer)
		}
	}
	if k := cfg.Exporters.Kafka; k != nil {
		if len(k.Brokers) == 0 {
			c.add("exporters.kafka", "needs brokers: e.g. brokers: [192.0.2.10:9092]")
		}
		for j, b := range k.Brokers {
			if _, _, err := net.SplitHostPort(b); err != nil {
				c.add(fmt.Sprintf("exporters.kafka.brokers[%d]", j), "%q is not host:port; write e.g. 192.0.2.10:9092", b)
			}
		}
		if k.Topic == "" {
			c.add("exporters.kafka", "needs topic: where the PingReports go (the seed's kafka.topic.flow.status)")
		}
		if k.SpoolDir == "" {
			k.SpoolDir = filepath.Join(cfg.StateDir, "kafka-spool")
		}
	}
}

// parseListen reads host:port where host may be empty or a bracketed IPv6.
func parseListen(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("is not host:port")
	}
	var p uint16
	if _, err := fmt.Sscan(port, &p); err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("has no port 1-65535")
	}
	a := netip.IPv6Unspecified()
	if host != "" {
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("does not name an IP address")
		}
	}
	return netip.AddrPortFrom(a, p), nil
}

// flowPath resolves a flow's path: SERVICE/PATH, or a bare path name that
// only one service has.
func (c *checker) flowPath(fp string, cfg *Config, f *Flow) {
	svc, path, qualified := strings.Cut(f.Path, "/")
	if !qualified {
		svc, path = "", f.Path
	}
	if path == "" || (qualified && svc == "") {
		c.add(fp+".path", "%q is not SERVICE/PATH; write e.g. path: internet/broadband", f.Path)
		return
	}
	var found []string
	var pathsOfSvc []string
	svcSeen := false
	for _, s := range cfg.Services {
		if qualified && s.Name != svc {
			continue
		}
		svcSeen = true
		for _, p := range s.Paths {
			if p.Name == path {
				found = append(found, s.Name)
			}
			pathsOfSvc = append(pathsOfSvc, p.Name)
		}
	}
	switch {
	case len(found) == 1:
		f.PathService, f.PathName = found[0], path
	case len(found) > 1:
		c.add(fp+".path", "path %q exists in services %s; say which one, e.g. path: %s/%s", path, strings.Join(found, ", "), found[0], path)
	case qualified && !svcSeen:
		var known []string
		for _, s := range cfg.Services {
			known = append(known, s.Name)
		}
		if len(known) == 0 {
			c.add(fp+".path", "no service is configured; define services first or remove path")
		} else {
			c.add(fp+".path", "no service is named %q; use SERVICE/PATH with one of: %s", svc, strings.Join(known, ", "))
		}
	case qualified:
		c.add(fp+".path", "service %q has no path %q; use one of its paths: %s", svc, path, strings.Join(pathsOfSvc, ", "))
	default:
		c.add(fp+".path", "no service has a path %q; write SERVICE/PATH with a configured path", path)
	}
}
