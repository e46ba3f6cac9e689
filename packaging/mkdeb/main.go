// Command mkdeb builds reachd's Debian package with nfpm (used as a
// library, no nfpm binary needed):
//
//	go run ./packaging/mkdeb [-version 0.1.0] [-arch amd64] [-out dist]
//
// It builds reachd and reachctl (static, stripped, version stamped),
// generates their man pages (from the cobra commands) and bash, zsh and
// fish completions by running the binaries it built, and packs them with
// the systemd unit, the default config (a conffile), the maintainer
// scripts, the copyright and changelog and the example Prometheus rules.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

const maintainer = "reachd maintainers <reachd@reachd.dev>"

func main() {
	version := flag.String("version", "0.1.0", "package version (Debian syntax, e.g. 0.1.0 or 0.2.0~rc1)")
	arch := flag.String("arch", runtime.GOARCH, "GOARCH to build for (Debian arch names: amd64, arm64, ...)")
	out := flag.String("out", "dist", "directory for the .deb")
	flag.Parse()
	file, err := build(*version, *arch, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	fmt.Println(file)
}

func build(version, arch, outDir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	pkg := filepath.Join(root, "packaging")
	work, err := os.MkdirTemp("", "reachd-mkdeb")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	mtime := sourceDate(root)

	// The binaries, for the target and (for docs) for this machine.
	for _, b := range []string{"reachd", "reachctl"} {
		if err := goBuild(root, arch, b, filepath.Join(work, b), version); err != nil {
			return "", err
		}
		if arch != runtime.GOARCH {
			if err := goBuild(root, runtime.GOARCH, b, filepath.Join(work, "host", b), version); err != nil {
				return "", err
			}
		}
	}
	host := work
	if arch != runtime.GOARCH {
		host = filepath.Join(work, "host")
	}

	contents := files.Contents{
		{Source: filepath.Join(work, "reachd"), Destination: "/usr/sbin/reachd", FileInfo: mode(0o755, mtime)},
		{Source: filepath.Join(work, "reachctl"), Destination: "/usr/bin/reachctl", FileInfo: mode(0o755, mtime)},
		{Source: filepath.Join(pkg, "reachd.service"), Destination: "/lib/systemd/system/reachd.service", FileInfo: mode(0o644, mtime)},
		{Source: filepath.Join(pkg, "reachd.yaml"), Destination: "/etc/reachd/reachd.yaml", Type: files.TypeConfigNoReplace, FileInfo: mode(0o644, mtime)},
		{Source: filepath.Join(pkg, "debian", "copyright"), Destination: "/usr/share/doc/reachd/copyright", FileInfo: mode(0o644, mtime)},
		{Source: filepath.Join(pkg, "prometheus", "reachd-alerts.yml"), Destination: "/usr/share/doc/reachd/examples/prometheus/reachd-alerts.yml", FileInfo: mode(0o644, mtime)},
		{Source: filepath.Join(pkg, "prometheus", "reachd-alerts_test.yml"), Destination: "/usr/share/doc/reachd/examples/prometheus/reachd-alerts_test.yml", FileInfo: mode(0o644, mtime)},
	}
	gz := func(src []byte, dst string) error {
		f := filepath.Join(work, "gz", strings.ReplaceAll(strings.TrimPrefix(dst, "/"), "/", "_"))
		if err := writeGzip(f, src); err != nil {
			return err
		}
		contents = append(contents, &files.Content{Source: f, Destination: dst, FileInfo: mode(0o644, mtime)})
		return nil
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return "", err
	}
	if err := gz(readme, "/usr/share/doc/reachd/README.md.gz"); err != nil {
		return "", err
	}
	if err := gz([]byte(changelog(version, mtime, commit(root))), "/usr/share/doc/reachd/changelog.gz"); err != nil {
		return "", err
	}

	// Man pages, generated from the cobra commands.
	man := filepath.Join(work, "man")
	env := append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", mtime.Unix()))
	for _, b := range []string{"reachd", "reachctl"} {
		cmd := exec.Command(filepath.Join(host, b), "man-pages", man)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s man-pages: %v\n%s", b, err, out)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(man, "*.[18]"))
	for _, p := range pages {
		if strings.Contains(filepath.Base(p), "-completion-powershell") {
			continue // no PowerShell on Debian
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		section := p[len(p)-1:]
		if err := gz(data, "/usr/share/man/man"+section+"/"+filepath.Base(p)+".gz"); err != nil {
			return "", err
		}
	}

	// Shell completions.
	for _, b := range []string{"reachd", "reachctl"} {
		for shell, dst := range map[string]string{
			"bash": "/usr/share/bash-completion/completions/" + b,
			"zsh":  "/usr/share/zsh/vendor-completions/_" + b,
			"fish": "/usr/share/fish/vendor_completions.d/" + b + ".fish",
		} {
			script, err := exec.Command(filepath.Join(host, b), "completion", shell).Output()
			if err != nil {
				return "", fmt.Errorf("%s completion %s: %w", b, shell, err)
			}
			f := filepath.Join(work, "completion", shell, b)
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(f, script, 0o644); err != nil {
				return "", err
			}
			contents = append(contents, &files.Content{Source: f, Destination: dst, FileInfo: mode(0o644, mtime)})
		}
	}

	info := &nfpm.Info{
		Name:          "reachd",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer,
		Homepage:      "https://github.com/reachd/reachd",
		License:       "reachd-unspecified",
		Description: "reachability detection and failover daemon\n" +
			"reachd probes every path out of a Linux host (ICMP, TCP, heartbeats,\n" +
			"STAMP), runs a state machine per path with retries and hold-down, and\n" +
			"fails services over by changing routes, rules and nftables marks while\n" +
			"keeping existing connections on their path. reachctl is its CLI.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Depends:  []string{"adduser"},
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(pkg, "debian", "postinst"),
				PreRemove:   filepath.Join(pkg, "debian", "prerm"),
				PostRemove:  filepath.Join(pkg, "debian", "postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("nfpm: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	name := filepath.Join(outDir, deb.Default.ConventionalFileName(info))
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return "", fmt.Errorf("nfpm deb: %w", err)
	}
	return name, os.WriteFile(name, buf.Bytes(), 0o644)
}

func mode(m os.FileMode, t time.Time) *files.ContentFileInfo {
	return &files.ContentFileInfo{Mode: m, Owner: "root", Group: "root", MTime: t}
}

func goBuild(root, arch, name, out, version string) error {
	// PIE: position independent (hardening), and lintian knows it is not a
	// static binary; no cgo, so no libc dependency.
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-buildmode=pie",
		"-ldflags", "-s -w -X github.com/reachd/reachd/internal/version.Version="+version,
		"-o", out, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", name, err, o)
	}
	return nil
}

func writeGzip(file string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // no name, no time: like gzip -9n
	w.Write(data)
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(file, b.Bytes(), 0o644)
}

// changelog is the Debian changelog of a package built from the repository.
func changelog(version string, t time.Time, rev string) string {
	what := "Built from the reachd repository"
	if rev != "" {
		what += " at commit " + rev
	}
	return fmt.Sprintf("reachd (%s) unstable; urgency=medium\n\n  * %s.\n\n -- %s  %s\n",
		version, what, maintainer, t.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "", fmt.Errorf("run mkdeb inside the reachd module: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// sourceDate is $SOURCE_DATE_EPOCH, else the last commit's time, else now:
// the same commit gives the same file dates.
func sourceDate(root string) time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}
