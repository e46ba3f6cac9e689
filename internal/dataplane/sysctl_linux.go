package dataplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// sysctls changes the few per-interface kernel settings reachd needs, says
// so in the log, and puts the values it found back when reachd stops
// (unless keep-on-exit) or when a reload drops the interface. The values it
// found are also kept in a file in state-dir, written before the change: a
// reachd that was killed and started again still knows, and restores, the
// operator's values rather than its own.
//
// It writes /proc/sys directly (no sysctl(8)).
type sysctls struct {
	log  *slog.Logger
	root string // "/proc/sys"
	file string // the values found before reachd changed them; "" keeps none
	orig map[string]string
}

func newSysctls(log *slog.Logger, stateDir string) *sysctls {
	s := &sysctls{log: log, root: "/proc/sys", orig: map[string]string{}}
	if stateDir != "" {
		s.file = filepath.Join(stateDir, "sysctl-orig.json")
		if b, err := os.ReadFile(s.file); err == nil {
			if err := json.Unmarshal(b, &s.orig); err != nil {
				log.Warn("ignoring unreadable file of original sysctl values", "file", s.file, "err", err)
				s.orig = map[string]string{}
			}
		}
	}
	return s
}

func (s *sysctls) path(key string) string { return filepath.Join(s.root, filepath.Clean("/"+key)) }

func (s *sysctls) read(key string) (string, error) {
	b, err := os.ReadFile(s.path(key))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *sysctls) write(key, v string) error {
	return os.WriteFile(s.path(key), []byte(v), 0o644)
}

// set makes key hold want; why goes into the log line.
func (s *sysctls) set(key, want, why string) error {
	cur, err := s.read(key)
	if err != nil {
		return fmt.Errorf("reading sysctl %s: %w", dotted(key), err)
	}
	if cur == want {
		return nil
	}
	if _, ok := s.orig[key]; !ok {
		s.orig[key] = cur
		if err := s.save(); err != nil {
			delete(s.orig, key)
			return err
		}
	}
	if err := s.write(key, want); err != nil {
		return fmt.Errorf("setting sysctl %s=%s: %w", dotted(key), want, err)
	}
	s.log.Info("sysctl changed", "key", dotted(key), "from", cur, "to", want, "why", why)
	return nil
}

// restore puts back the value found before reachd changed key.
func (s *sysctls) restore(key string) error {
	old, ok := s.orig[key]
	if !ok {
		return nil
	}
	cur, err := s.read(key)
	if errors.Is(err, os.ErrNotExist) {
		// The interface is gone, and its settings with it.
		delete(s.orig, key)
		return s.save()
	}
	if err != nil {
		return fmt.Errorf("reading sysctl %s: %w", dotted(key), err)
	}
	if cur != old {
		if err := s.write(key, old); err != nil {
			return fmt.Errorf("restoring sysctl %s=%s: %w", dotted(key), old, err)
		}
		s.log.Info("sysctl restored", "key", dotted(key), "from", cur, "to", old)
	}
	delete(s.orig, key)
	return s.save()
}

// restoreExcept restores every key reachd changed that is not in keep.
func (s *sysctls) restoreExcept(keep map[string]bool) error {
	var keys []string
	for k := range s.orig {
		if !keep[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if err := s.restore(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// save writes the original values atomically (temporary file, fsync,
// rename); with none left the file is removed.
func (s *sysctls) save() error {
	if s.file == "" {
		return nil
	}
	if len(s.orig) == 0 {
		if err := os.Remove(s.file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", s.file, err)
		}
		return nil
	}
	data, err := json.MarshalIndent(s.orig, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.file), 0o755); err != nil {
		return fmt.Errorf("saving original sysctl values: %w", err)
	}
	tmp := s.file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("saving original sysctl values: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.file)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving original sysctl values: %w", err)
	}
	return nil
}

// dotted is key as sysctl(8) names it: net.ipv4.conf.wan0.src_valid_mark
// (an interface name keeps its own dots only in the /proc/sys form).
func dotted(key string) string { return strings.ReplaceAll(key, "/", ".") }

// srcValidMarkKey is the setting that makes IPv4 reverse-path filtering
// look the source up with the packet's mark on interface ifname.
func srcValidMarkKey(ifname string) string { return "net/ipv4/conf/" + ifname + "/src_valid_mark" }

// rpFilter is the reverse-path filtering in force on ifname: the larger of
// "all" and the interface's own value, as the kernel applies it.
func (s *sysctls) rpFilter(ifname string) (int, error) {
	v := 0
	for _, k := range []string{"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/" + ifname + "/rp_filter"} {
		txt, err := s.read(k)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(txt)
		if err != nil {
			return 0, fmt.Errorf("sysctl %s: %q", dotted(k), txt)
		}
		v = max(v, n)
	}
	return v, nil
}
