package daemon

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/dataplane"
	"golang.org/x/sys/unix"
)

// Capabilities reachd may use (linux/capability.h).
const (
	capNetBindService = 10
	capNetAdmin       = 12
	capNetRaw         = 13
)

// effectiveCaps reads this process's effective capability set.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapEff in /proc/self/status")
}

// privilegeProblems lists what cfg needs that a process with caps lacks,
// each as one sentence that says what fails and what to grant. reachd
// runs with CAP_NET_ADMIN and CAP_NET_RAW under its systemd unit; more is
// needed only for ports below unprivPort.
func privilegeProblems(cfg *config.Config, caps uint64, unprivPort int, sysNetWritable bool) []string {
	has := func(c int) bool { return caps&(1<<c) != 0 }
	var out []string
	icmp := false
	for _, s := range cfg.Services {
		for _, p := range s.Paths {
			icmp = icmp || p.ProbeType == "icmp" || p.ProbeType == ""
		}
	}
	routed := dataplane.Active(planeConfig(cfg))
	if !has(capNetRaw) && (icmp || len(cfg.Linktests) > 0) {
		out = append(out, "no CAP_NET_RAW: ICMP probes fall back to unprivileged ping sockets (net.ipv4.ping_group_range must include reachd's group), link tests and SO_BINDTODEVICE of routed paths fail; grant CAP_NET_RAW")
	}
	bypass := false
	for _, l := range cfg.Heartbeats.Listeners {
		bypass = bypass || len(l.Bypass.RemoveAddresses)+len(l.Bypass.DownInterfaces) > 0
	}
	for _, g := range cfg.Heartbeats.Groups {
		bypass = bypass || len(g.Bypass.RemoveAddresses)+len(g.Bypass.DownInterfaces) > 0
	}
	if !has(capNetAdmin) && (routed || bypass || len(cfg.Announce) > 0) {
		out = append(out, "no CAP_NET_ADMIN: routes, rules, nftables pinning, conntrack flushes, bypass actions, SO_MARK and per-interface sysctls fail; grant CAP_NET_ADMIN")
	}
	if routed && has(capNetAdmin) && !sysNetWritable {
		out = append(out, "/proc/sys/net is not writable: reachd cannot set the per-interface sysctls a routed path needs (rp_filter); do not set ProtectKernelTunables= or mount /proc/sys read-only")
	}
	if !has(capNetBindService) {
		for _, l := range listeners(cfg) {
			if l.port > 0 && l.port < unprivPort {
				out = append(out, fmt.Sprintf("%s: port %d is below net.ipv4.ip_unprivileged_port_start (%d) and reachd has no CAP_NET_BIND_SERVICE; grant it (systemctl edit reachd: AmbientCapabilities=CAP_NET_BIND_SERVICE and CapabilityBoundingSet=CAP_NET_BIND_SERVICE) or use a port from %d", l.key, l.port, unprivPort, unprivPort))
			}
		}
	}
	return out
}

type listener struct {
	key  string
	port int
}

// listeners are the TCP/UDP ports cfg binds.
func listeners(cfg *config.Config) []listener {
	var out []listener
	add := func(key, hostport string) {
		if hostport == "" {
			return
		}
		if _, p, err := net.SplitHostPort(hostport); err == nil {
			n, _ := strconv.Atoi(p)
			out = append(out, listener{key, n})
		}
	}
	add("api.listen", cfg.API.Listen)
	add("metrics.listen", cfg.Metrics.Listen)
	add("dashboard.listen", cfg.Dashboard.Listen)
	if cfg.StampReflector.Enabled {
		add("stamp-reflector.listen", cfg.StampReflector.Listen)
	}
	for i, l := range cfg.Heartbeats.Listeners {
		add(fmt.Sprintf("heartbeats.listeners[%d].listen", i), l.Listen)
	}
	if cfg.BGP.ListenPort > 0 {
		out = append(out, listener{"bgp.listen-port", cfg.BGP.ListenPort})
	}
	return out
}

// checkPrivileges says at start-up who reachd runs as, with which
// capabilities, and what of the config will fail for lack of privilege.
func (d *Daemon) checkPrivileges() {
	caps, err := effectiveCaps()
	if err != nil {
		d.log.Warn("cannot read this process's capabilities", "err", err)
		return
	}
	unprivPort := 1024
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			unprivPort = n
		}
	}
	writable := unix.Faccessat(unix.AT_FDCWD, "/proc/sys/net/ipv4/conf/all/rp_filter", unix.W_OK, unix.AT_EACCESS) == nil
	names := []string{}
	for c, n := range map[int]string{capNetAdmin: "CAP_NET_ADMIN", capNetRaw: "CAP_NET_RAW", capNetBindService: "CAP_NET_BIND_SERVICE"} {
		if caps&(1<<c) != 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	all := caps == (1<<(unix.CAP_LAST_CAP+1))-1
	if all {
		names = []string{"all"}
	}
	d.log.Info("privileges", "uid", os.Geteuid(), "gid", os.Getegid(), "capabilities", strings.Join(names, ","))
	for _, p := range privilegeProblems(d.cfg, caps, unprivPort, writable) {
		d.log.Warn("insufficient privilege: " + p)
	}
}
