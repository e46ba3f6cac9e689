// Package daemonrun runs the real reachd daemon for the benchmarks: it
// builds ./cmd/reachd, writes a config that probes N targets, starts the
// binary in a lab namespace (internal/labdaemon), samples what the kernel
// accounts to its process (/proc) and what it reports on /metrics, and stops
// it. bench/cmd/bench's -daemon mode uses it; so can any other benchmark of
// the whole daemon (detection time, API under load).
//
//	bin, _ := daemonrun.Build(tmp)
//	d, _ := daemonrun.Start(top.Prober, bin, dir, daemonrun.Config{Targets: top.Addrs})
//	defer d.Stop()
//	s := daemonrun.Sample(d.PID())            // CPU, RSS, HWM, threads, fds
//	m, _ := d.Scrape(ctx)                     // /metrics, summed by name
package daemonrun

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/internal/atomicfile"
	"github.com/reachd/reachd/internal/lab"
	"github.com/reachd/reachd/internal/labdaemon"
	"golang.org/x/sys/unix"
)

// Build compiles ./cmd/reachd of this module into dir and returns the
// path of the binary, installed there as a package would be (Install).
// Extra go build flags (e.g. "-race") come first.
func Build(dir string, flags ...string) (string, error) {
	linked := filepath.Join(dir, "reachd.linked")
	args := append(append([]string{"build"}, flags...), "-o", linked, "./cmd/reachd")
	cmd := exec.Command("go", args...)
	cmd.Dir = ModuleRoot()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building reachd: %w\n%s", err, msg)
	}
	defer os.Remove(linked)
	return Install(linked, dir)
}

// Install copies the binary bin to dir/reachd, writes it to disk and drops
// its pages from the page cache, and returns the copy's path: the first
// exec then reads the binary from disk, as a host's first start after boot
// does. The peak RSS of a run depends on how the binary's pages came into
// the page cache, because the Go runtime's start faults the binary in
// before reachd's main can trim it (internal/exemap): pages just written
// are in large folios and map 2 MiB at a time. At 10,000 targets the peak
// was 34.3-34.5 MiB on the first run of a binary the Go linker had just
// written, 32.3-32.6 MiB on the first run of one written with write(2) and
// fsync (as a package upgrade leaves it), and 26.8-27.4 MiB read from disk
// (BENCHMARKS.md, "Peak RSS and the page cache"); at the end of each run
// it was 27-28 MiB.
func Install(bin, dir string) (string, error) {
	out := filepath.Join(dir, "reachd")
	if abs, err := filepath.Abs(bin); err == nil && abs == out {
		return "", fmt.Errorf("installing reachd: %s is where the copy goes; give another path", bin)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("installing reachd: %w", err)
	}
	// Written, fsynced and renamed into place, as a package manager does.
	if err := atomicfile.WriteFile(out, data, 0o755); err != nil {
		return "", fmt.Errorf("installing reachd: %w", err)
	}
	// Out of the page cache: the first exec reads the binary from disk,
	// as at a host's boot.
	f, err := os.Open(out)
	if err != nil {
		return "", fmt.Errorf("installing reachd: %w", err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return "", fmt.Errorf("installing reachd: dropping the copy's cached pages: %w", err)
	}
	return out, nil
}

// ModuleRoot is the directory of this module's go.mod (the working
// directory when go cannot say).
func ModuleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p)
		}
	}
	wd, _ := os.Getwd()
	return wd
}

// MetricsAddr is where Config's default metrics listener is, inside the
// daemon's namespace.
const MetricsAddr = "127.0.0.1:9469"

// Config is the reachd config a benchmark runs: one service whose probed-only
// paths (no interface or gateway, so no routes) share the targets.
type Config struct {
	Targets []netip.Addr
	// Paths splits the targets evenly over this many paths (p0, p1, ...);
	// default 1.
	Paths int
	// Interval is probe-interval; default 1s.
	Interval time.Duration
	// Retries is number-of-retries; default 3.
	Retries int
	// RetryInterval is retry-interval; default 3 × Interval (an attempt
	// then waits Interval for its reply).
	RetryInterval time.Duration
	// Metrics is metrics.listen; default MetricsAddr. "-" for none.
	Metrics string
	// PerTarget is metrics.per-target; "" leaves the default (auto).
	PerTarget string
	// LogLevel is log.level; default warn (a path transition is still
	// logged at info; warn keeps the log of a big run short).
	LogLevel string
	// LogFormat is log.format (text or json); "" leaves the default (text).
	LogFormat string
	// Extra is YAML appended at the top level (e.g. "dashboard: ...").
	Extra string
}

func (c Config) withDefaults() Config {
	if c.Paths < 1 {
		c.Paths = 1
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Duration(c.Retries) * c.Interval
	}
	if c.Metrics == "" {
		c.Metrics = MetricsAddr
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	return c
}

// YAML is the config file, with "{{DIR}}" where the run's directory goes
// (labdaemon.StartNS replaces it).
func (c Config) YAML() string {
	c = c.withDefaults()
	var b strings.Builder
	b.WriteString("# written by bench/internal/daemonrun\napi:\n  socket: {{DIR}}/reachd.sock\nstate-dir: {{DIR}}/state\n")
	if c.Metrics != "-" {
		fmt.Fprintf(&b, "metrics:\n  listen: %q\n", c.Metrics)
		if c.PerTarget != "" {
			fmt.Fprintf(&b, "  per-target: %s\n", c.PerTarget)
		}
	}
	fmt.Fprintf(&b, "log:\n  level: %s\n", c.LogLevel)
	if c.LogFormat != "" {
		fmt.Fprintf(&b, "  format: %s\n", c.LogFormat)
	}
	b.WriteString("services:\n  - name: bench\n    address: [\"2001:db8:200::/64\"]\n    paths:\n")
	n := len(c.Targets)
	for p := 0; p < c.Paths; p++ {
		part := c.Targets[p*n/c.Paths : (p+1)*n/c.Paths]
		fmt.Fprintf(&b, "      - name: p%d\n        vector-priority: %d\n", p, 10+p)
		fmt.Fprintf(&b, "        probe-interval: %v\n        number-of-retries: %d\n        retry-interval: %v\n",
			c.Interval, c.Retries, c.RetryInterval)
		b.WriteString("        probe-address: [")
		for i, a := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(a.String())
		}
		b.WriteString("]\n")
	}
	if c.Extra != "" {
		b.WriteString(c.Extra)
		if !strings.HasSuffix(c.Extra, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Daemon is one reachd process started by Start.
type Daemon struct {
	*labdaemon.Reachd
	cfg Config

	httpOnce sync.Once
	http     *http.Client
}

// Start writes c into dir (which must exist) and starts binary in ns with
// args after --config FILE (e.g. "--cpuprofile", FILE). It returns once
// the API answers.
func Start(ns *lab.NS, binary, dir string, c Config, args ...string) (*Daemon, error) {
	if len(c.Targets) == 0 {
		return nil, fmt.Errorf("daemonrun: no targets")
	}
	r, err := labdaemon.StartNS(ns, binary, dir, c.YAML(), args...)
	if err != nil {
		return nil, err
	}
	return &Daemon{Reachd: r, cfg: c.withDefaults()}, nil
}

// Config is the config the daemon was started with (defaults filled in).
func (d *Daemon) Config() Config { return d.cfg }
