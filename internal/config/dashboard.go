package config

import (
	"net"
	"net/netip"
	"time"
)

// Dashboard defaults.
const (
	DefaultDashboardSaveInterval = 5 * time.Minute
	DefaultDashboardEvents       = 1000
	DefaultDashboardSeries       = 4096
)

// Dashboard configures the web dashboard. It is off unless Listen is set;
// a listen address without a host (":9471") binds loopback only.
type Dashboard struct {
	Listen string `yaml:"listen"`
	// SaveInterval is how often the history is written to state-dir (it is
	// also written on exit).
	SaveInterval Duration `yaml:"save-interval"`
	// Events is how many events the feed keeps.
	Events int `yaml:"events"`
	// MaxSeries bounds the charts kept (paths, flow directions, link
	// tests), and so the history's memory (52 KiB each).
	MaxSeries int `yaml:"max-series"`
}

// Enabled reports whether the dashboard is served.
func (d Dashboard) Enabled() bool { return d.Listen != "" }

func (c *checker) dashboard(d *Dashboard) {
	if d.Listen != "" {
		host, port, err := net.SplitHostPort(d.Listen)
		if err != nil {
			c.add("dashboard.listen", "%q is not host:port; write e.g. 127.0.0.1:9471 (or :9471 for loopback)", d.Listen)
		} else {
			if host == "" {
				d.Listen = net.JoinHostPort("127.0.0.1", port)
			} else if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
				c.add("dashboard.listen", "%q is not an IP address; write the address to bind, e.g. 127.0.0.1:9471", host)
			}
		}
	}
	c.duration("dashboard.save-interval", &d.SaveInterval, DefaultDashboardSaveInterval)
	if d.SaveInterval.bad == "" && d.SaveInterval.D < time.Second {
		c.add("dashboard.save-interval", "%v is too short; write e.g. 5m", d.SaveInterval.D)
	}
	switch {
	case d.Events == 0:
		d.Events = DefaultDashboardEvents
	case d.Events < 10 || d.Events > 100000:
		c.add("dashboard.events", "%d must be between 10 and 100000", d.Events)
	}
	switch {
	case d.MaxSeries == 0:
		d.MaxSeries = DefaultDashboardSeries
	case d.MaxSeries < 1 || d.MaxSeries > 100000:
		c.add("dashboard.max-series", "%d must be between 1 and 100000", d.MaxSeries)
	}
}
