package packaging

import (
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// watched are the places a package may leave things behind.
var watched = []string{"/etc", "/lib/systemd", "/usr/lib/systemd", "/usr/sbin", "/usr/bin", "/usr/share/man",
	"/usr/share/doc", "/usr/share/bash-completion", "/usr/share/zsh", "/usr/share/fish", "/var/lib", "/run/reachd"}

// snapshot lists every path under watched (dpkg's and apt's own databases
// and caches excluded: they record the package's history by design).
func snapshot(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, root := range watched {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && (p == "/var/lib/dpkg" || p == "/var/lib/apt") {
				return fs.SkipDir
			}
			// /etc/ld.so.cache and friends change under other tests' feet.
			if strings.HasPrefix(p, "/etc/ld.so.cache") {
				return nil
			}
			out[p] = true
			return nil
		})
	}
	return out
}

func diffSnapshots(before, after map[string]bool) (added, removed []string) {
	for p := range after {
		if !before[p] {
			added = append(added, p)
		}
	}
	for p := range before {
		if !after[p] {
			removed = append(removed, p)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebianPackage builds the .deb with the documented command, checks
// its contents and lintian, and installs it on this machine: reachd
// --check passes on the shipped config, the user and group exist, an
// upgrade over itself works, remove keeps only the conffile and purge
// leaves the watched directories exactly as they were.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs the package with dpkg")
	}
	prebuilt := os.Getenv("REACHD_DEB") // .ci/run builds it with the documented command
	if testing.Short() && prebuilt == "" {
		t.Skip("builds and installs the package (set REACHD_DEB to test a built one)")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "lintian", "adduser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	if exec.Command("dpkg", "-s", "reachd").Run() == nil {
		t.Skip("reachd is installed on this machine; the test would remove it")
	}
	if _, err := user.Lookup("reachd"); err == nil {
		t.Skip("a reachd user exists on this machine; the test would remove it")
	}

	deb := prebuilt
	if deb == "" {
		cmd := exec.Command("go", "run", "./mkdeb", "-version", "0.1.0", "-out", t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go run ./packaging/mkdeb: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		deb = lines[len(lines)-1]
		if !strings.HasSuffix(deb, ".deb") {
			t.Fatalf("mkdeb printed %q, want the .deb's path", out)
		}
	}
	if v := run(t, "dpkg-deb", "-f", deb, "Version"); strings.TrimSpace(v) != "0.1.0" {
		t.Fatalf("%s has version %q; the test checks reachctl's version against 0.1.0", deb, v)
	}

	// Contents.
	list := run(t, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"./usr/sbin/reachd", "./usr/bin/reachctl", "./lib/systemd/system/reachd.service", "./etc/reachd/reachd.yaml",
		"./usr/share/man/man8/reachd.8.gz", "./usr/share/man/man1/reachctl.1.gz", "./usr/share/man/man1/reachctl-status.1.gz",
		"./usr/share/bash-completion/completions/reachctl", "./usr/share/zsh/vendor-completions/_reachctl",
		"./usr/share/fish/vendor_completions.d/reachctl.fish", "./usr/share/doc/reachd/copyright", "./usr/share/doc/reachd/changelog.gz",
		"./usr/share/doc/reachd/examples/prometheus/reachd-alerts.yml",
	} {
		if !strings.Contains(list, " "+want+"\n") {
			t.Errorf("package lacks %s", want)
		}
	}
	if conf := run(t, "dpkg-deb", "-f", deb, "Depends"); !strings.Contains(conf, "adduser") {
		t.Errorf("Depends: %q", conf)
	}
	ctrl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctrl)
	if c, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); strings.TrimSpace(string(c)) != "/etc/reachd/reachd.yaml" {
		t.Errorf("conffiles: %q", c)
	}

	// lintian: no errors (warnings are printed).
	lout, lerr := exec.Command("lintian", "--tag-display-limit", "0", deb).CombinedOutput()
	t.Logf("lintian:\n%s", lout)
	for _, l := range strings.Split(string(lout), "\n") {
		if strings.HasPrefix(l, "E: ") {
			t.Errorf("lintian error: %s", l)
		}
	}
	if lerr != nil && !strings.Contains(string(lout), "E: ") {
		if ee, ok := lerr.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("lintian: %v", lerr)
		}
	}

	before := snapshot(t)
	purged := false
	t.Cleanup(func() {
		if !purged {
			exec.Command("dpkg", "--purge", "reachd").Run()
		}
	})

	// Install.
	run(t, "dpkg", "-i", deb)
	run(t, "/usr/sbin/reachd", "--check", "--config", "/etc/reachd/reachd.yaml")
	u, err := user.Lookup("reachd")
	if err != nil {
		t.Fatalf("no reachd user after install: %v", err)
	}
	g, err := user.LookupGroup("reachd")
	if err != nil || u.Gid != g.Gid {
		t.Errorf("reachd group: %v (user's gid %s)", err, u.Gid)
	}
	if u.HomeDir != "/var/lib/reachd" {
		t.Errorf("home %s", u.HomeDir)
	}
	if out, _ := exec.Command("/usr/bin/reachctl", "--socket", filepath.Join(t.TempDir(), "none"), "version").CombinedOutput(); !strings.Contains(string(out), "reachctl 0.1.0") {
		t.Errorf("reachctl version: %s", out)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := exec.Command("systemd-analyze", "verify", "--man=no", "/lib/systemd/system/reachd.service").CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
		}
	}

	// Upgrade over itself: the conffile as changed by the operator stays.
	conf, _ := os.ReadFile("/etc/reachd/reachd.yaml")
	edited := strings.Replace(string(conf), "level: info ", "level: debug", 1)
	os.WriteFile("/etc/reachd/reachd.yaml", []byte(edited), 0o644)
	run(t, "dpkg", "--force-confold", "-i", deb)
	if now, _ := os.ReadFile("/etc/reachd/reachd.yaml"); string(now) != edited {
		t.Errorf("upgrade replaced the operator's config")
	}
	run(t, "/usr/sbin/reachd", "--check", "--config", "/etc/reachd/reachd.yaml")

	// Remove: binaries go, the conffile stays.
	run(t, "dpkg", "-r", "reachd")
	for _, gone := range []string{"/usr/sbin/reachd", "/usr/bin/reachctl", "/lib/systemd/system/reachd.service"} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s left after remove", gone)
		}
	}
	if _, err := os.Stat("/etc/reachd/reachd.yaml"); err != nil {
		t.Errorf("remove deleted the conffile: %v", err)
	}

	// Purge: nothing left.
	run(t, "dpkg", "--purge", "reachd")
	purged = true
	if _, err := user.Lookup("reachd"); err == nil {
		t.Errorf("reachd user left after purge")
	}
	if _, err := user.LookupGroup("reachd"); err == nil {
		t.Errorf("reachd group left after purge")
	}
	added, removed := diffSnapshots(before, snapshot(t))
	if len(added)+len(removed) > 0 {
		t.Errorf("install+purge changed the host:\nadded: %v\nremoved: %v", added, removed)
	}
}
