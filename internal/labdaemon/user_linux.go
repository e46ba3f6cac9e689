package labdaemon

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// DaemonCaps are the capabilities the systemd unit grants reachd
// (AmbientCapabilities= and CapabilityBoundingSet=), in setpriv's syntax.
const DaemonCaps = "-all,+net_admin,+net_raw"

// unprivileged is the setpriv prefix that runs a command as name with
// only DaemonCaps: its uid and gid, its supplementary groups, the caps as
// inheritable and ambient (so they survive the exec of an unprivileged
// binary, as with AmbientCapabilities=) and nothing else in the bounding
// set.
func unprivileged(name string) []string {
	gid := "nogroup"
	if u, err := user.Lookup(name); err == nil {
		gid = u.Gid
	}
	return []string{"setpriv", "--reuid=" + name, "--regid=" + gid, "--init-groups",
		"--inh-caps=" + DaemonCaps, "--ambient-caps=" + DaemonCaps, "--bounding-set=" + DaemonCaps, "--"}
}

// handOver gives dir (config, socket, state) to the user, and lets it
// reach dir and the binary: the directories above them (test temp dirs
// are 0700) get o+x, nothing more.
func handOver(dir, binary, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("reachd as %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("handing %s to %s: %w", dir, name, err)
	}
	for _, p := range []string{dir, binary} {
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			st, err := os.Stat(d)
			if err != nil {
				return err
			}
			if st.Mode().Perm()&0o001 == 0 {
				if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkUnprivileged makes sure the daemon (pid: ip netns exec and setpriv
// exec, so it is the same process) really runs without root: a non-zero
// uid and exactly CAP_NET_ADMIN and CAP_NET_RAW effective.
func checkUnprivileged(pid int) error {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	var uid, capEff string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid = strings.Fields(v)[1] // effective
		}
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			capEff = strings.TrimSpace(v)
		}
	}
	if uid == "0" || capEff != "0000000000003000" {
		return fmt.Errorf("reachd should run unprivileged, but has uid %s and CapEff %s", uid, capEff)
	}
	return nil
}
