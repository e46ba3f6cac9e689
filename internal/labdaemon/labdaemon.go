// Package labdaemon runs a reachd binary (a lab daemon) inside the router namespace of the
// standard lab topology (internal/lab) and reads back what it did to the
// kernel. The end-to-end tests and `reachd demo` share it.
package labdaemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/reachd/reachd/internal/client"
	"github.com/reachd/reachd/internal/lab"
	"github.com/vishvananda/netlink"
)

// Timing is the probe timing of both paths.
type Timing struct {
	ProbeInterval, RetryInterval, HoldDown time.Duration
	Retries                                int
}

// Fast is the timing of the tests and the demo (the benchmark
// timing): down within probe-interval + retry-interval = 500 ms.
var Fast = Timing{ProbeInterval: 200 * time.Millisecond, RetryInterval: 300 * time.Millisecond, Retries: 3, HoldDown: time.Second}

// Options describe the reachd config written for the standard topology.
type Options struct {
	// User, when set, runs reachd as that user holding only CAP_NET_ADMIN
	// and CAP_NET_RAW (setpriv; what the systemd unit grants), instead of
	// as root. dir is handed to the user.
	User        string
	Timing      Timing
	V6          bool // route ::/0 over the IPv6 gateways instead of 0.0.0.0/0
	BestEffort  bool
	FlushOnDown bool
	KeepOnExit  bool
	// Dampening, when set, is the broadband path's dampening: block as a
	// YAML flow mapping, e.g. "{half-life: 5s}".
	Dampening string
	// Metrics is metrics.listen (inside the router namespace); "" for none.
	Metrics string
	// Dashboard is dashboard.listen inside the router namespace ("": off).
	Dashboard string
	// Extra is YAML appended to the config: more top-level sections
	// (flows, link-tests, ...) beside the standard service.
	Extra string
}

// Reachd is one reachd process in the router namespace.
type Reachd struct {
	Top    *lab.Topology
	Dir    string // config, socket, state and app-id files
	Config string
	Client *client.Client
	Binary string
	// NS is where the daemon runs: the standard topology's router, or the
	// namespace given to StartNS.
	NS *lab.NS
	// User is Options.User: reachd runs as this user with only
	// CAP_NET_ADMIN and CAP_NET_RAW ("" means root).
	User string
	// Args are more command-line arguments, after --config FILE (e.g. the
	// benchmarks' --cpuprofile).
	Args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

const configTemplate = `# written by internal/labdaemon for the standard lab topology
api:
  socket: {{.Dir}}/reachd.sock
state-dir: {{.Dir}}/state
state-file-dir: {{.Dir}}/statefiles
keep-on-exit: {{.KeepOnExit}}
{{- if .Metrics}}
metrics:
  listen: {{.Metrics}}
{{- end}}
{{- if .Dashboard}}
dashboard:
  listen: "{{.Dashboard}}"
{{- end}}
log:
  level: info
services:
  - name: internet
    address: [{{.Prefix}}]
    hold-down: {{.HoldDown}}
    best-effort: {{.BestEffort}}
    app-id-module-dir: {{.Dir}}/modules
    paths:
{{- range .Paths}}
      - name: {{.Name}}
        vector-priority: {{.Prio}}
        interface: {{.If}}
        gateway: {{.Gw}}
        probe-address: [{{.Target}}]
        probe-interval: {{$.ProbeInterval}}
        number-of-retries: {{$.Retries}}
        retry-interval: {{$.RetryInterval}}
        flush-on-down: {{$.FlushOnDown}}
{{- if and $.Dampening (eq .Name "broadband")}}
        dampening: {{$.Dampening}}
{{- end}}
{{- end}}
{{.Extra}}`

type pathTmpl struct {
	Name, If string
	Prio     int
	Gw       netip.Addr
	Target   netip.Addr
}

// WriteConfig writes the config for top into dir and returns its path.
func WriteConfig(top *lab.Topology, dir string, o Options) (string, error) {
	if o.Timing == (Timing{}) {
		o.Timing = Fast
	}
	prefix, t1, g1, g2 := "0.0.0.0/0", top.Targets4[0], top.ISP1.Gateway4, top.ISP2.Gateway4
	if o.V6 {
		prefix, t1, g1, g2 = "::/0", top.Targets6[0], top.ISP1.Gateway6, top.ISP2.Gateway6
	}
	data := map[string]any{
		"Dir": dir, "Prefix": fmt.Sprintf("%q", prefix), "BestEffort": o.BestEffort, "KeepOnExit": o.KeepOnExit,
		"FlushOnDown": o.FlushOnDown, "Dampening": o.Dampening, "Metrics": o.Metrics, "Dashboard": o.Dashboard, "Extra": o.Extra, "HoldDown": o.Timing.HoldDown.String(),
		"ProbeInterval": o.Timing.ProbeInterval.String(), "RetryInterval": o.Timing.RetryInterval.String(), "Retries": o.Timing.Retries,
		"Paths": []pathTmpl{
			{Name: "broadband", If: top.ISP1.RouterIf, Prio: 10, Gw: g1, Target: t1},
			{Name: "lte", If: top.ISP2.RouterIf, Prio: 20, Gw: g2, Target: t1},
		},
	}
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(configTemplate)).Execute(&b, data); err != nil {
		return "", err
	}
	file := filepath.Join(dir, "reachd.yaml")
	return file, os.WriteFile(file, b.Bytes(), 0o644)
}

// Start writes the config and starts binary in the router namespace.
func Start(top *lab.Topology, binary, dir string, o Options) (*Reachd, error) {
	file, err := WriteConfig(top, dir, o)
	if err != nil {
		return nil, err
	}
	r := &Reachd{Top: top, NS: top.Router, Dir: dir, Config: file, Binary: binary, User: o.User, Client: client.New(filepath.Join(dir, "reachd.sock"))}
	if o.User != "" {
		if err := handOver(dir, binary, o.User); err != nil {
			return nil, err
		}
	}
	return r, r.Restart()
}

// StartNS writes config (YAML; "{{DIR}}" is replaced by dir, for the
// socket and state paths) to dir and starts binary in ns, with args after
// --config FILE. The API socket must be DIR/reachd.sock.
func StartNS(ns *lab.NS, binary, dir, config string, args ...string) (*Reachd, error) {
	file := filepath.Join(dir, "reachd.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(config, "{{DIR}}", dir)), 0o644); err != nil {
		return nil, err
	}
	r := &Reachd{NS: ns, Dir: dir, Config: file, Binary: binary, Args: args, Client: client.New(filepath.Join(dir, "reachd.sock"))}
	return r, r.Restart()
}

// Restart starts the daemon again (after Kill or Stop).
func (r *Reachd) Restart() error {
	r.mu.Lock()
	args := append([]string{r.Binary, "--config", r.Config}, r.Args...)
	if r.User != "" {
		args = append(unprivileged(r.User), args...)
	}
	cmd := r.NS.Command(args[0], args[1:]...)
	// The daemon writes its log straight into a file: through a pipe, a
	// reader that falls behind (a benchmark parsing the log while 10,000
	// targets change state) would block the daemon's writes and so time
	// what it measures.
	logf, err := os.Create(r.logPath())
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("starting reachd: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Start()
	logf.Close() // the daemon has its own copy
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("starting reachd: %w", err)
	}
	r.cmd = cmd
	exited := make(chan struct{})
	r.exited = exited
	r.mu.Unlock()
	go func() { cmd.Wait(); close(exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a -race binary on a loaded machine
	defer cancel()
	for {
		if _, err := r.Client.PathInfo(ctx); err == nil {
			if r.User != "" {
				return checkUnprivileged(cmd.Process.Pid)
			}
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("reachd exited at start:\n%s", r.Log())
		case <-ctx.Done():
			return fmt.Errorf("reachd did not start serving:\n%s", r.Log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logPath is the file the daemon's stdout and stderr go to.
func (r *Reachd) logPath() string { return filepath.Join(r.Dir, "reachd.log") }

// Log returns what the daemon printed so far.
func (r *Reachd) Log() string {
	b, _ := os.ReadFile(r.logPath())
	return string(b)
}

// LogSince returns the whole lines the daemon printed from byte offset
// off on, and the offset after them: a reader that polls a long log reads
// each line once.
func (r *Reachd) LogSince(off int64) (string, int64) {
	f, err := os.Open(r.logPath())
	if err != nil {
		return "", off
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, off, 1<<62))
	if err != nil {
		return "", off
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	return string(b), off + int64(len(b))
}

// PID is the daemon's process id (0 when not started).
func (r *Reachd) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Kill ends the daemon with SIGKILL (no cleanup) and waits.
func (r *Reachd) Kill() { r.signal(syscall.SIGKILL) }

// Stop ends the daemon with SIGTERM (clean stop) and waits.
func (r *Reachd) Stop() { r.signal(syscall.SIGTERM) }

func (r *Reachd) signal(sig syscall.Signal) {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Route is the kernel's route for the service prefix in the router's main
// table, in words: "via 198.51.100.2 dev wan0", "unreachable" or "none".
func (r *Reachd) Route(v6 bool) string {
	fam, dst := netlink.FAMILY_V4, "0.0.0.0/0"
	if v6 {
		fam, dst = netlink.FAMILY_V6, "::/0"
	}
	return RouteOf(r.Top.Router, fam, dst)
}

// RouteOf describes the main-table route to dst in ns.
func RouteOf(ns *lab.NS, fam int, dst string) string {
	routes, err := ns.Handle().RouteListFiltered(fam, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "error: " + err.Error()
	}
	want := netip.MustParsePrefix(dst)
	for _, rt := range routes {
		p := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if fam == netlink.FAMILY_V4 {
			p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		if rt.Dst != nil { // netlink lists default routes with a nil Dst
			a, _ := netip.AddrFromSlice(rt.Dst.IP)
			ones, _ := rt.Dst.Mask.Size()
			if fam == netlink.FAMILY_V4 {
				a = a.Unmap()
			}
			p = netip.PrefixFrom(a, ones)
		}
		if p != want {
			continue
		}
		if rt.Type == syscall.RTN_UNREACHABLE {
			return "unreachable"
		}
		dev := ""
		if l, err := ns.Handle().LinkByIndex(rt.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		return strings.TrimSpace(fmt.Sprintf("via %v dev %s", rt.Gw, dev))
	}
	return "none"
}

// WaitRoute polls the route every 2 ms until it is want or limit passes,
// and returns how long it took.
func (r *Reachd) WaitRoute(v6 bool, want string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		got := r.Route(v6)
		if got == want {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return time.Since(start), fmt.Errorf("route is %q after %v, want %q", got, limit, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Via is the route text for a path of the topology ("via GW dev IF").
func Via(isp *lab.ISP, v6 bool) string {
	gw := isp.Gateway4
	if v6 {
		gw = isp.Gateway6
	}
	return fmt.Sprintf("via %v dev %s", gw, isp.RouterIf)
}
