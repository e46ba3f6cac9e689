package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/atomicfile"
	"github.com/reachd/reachd/internal/policy"
	"github.com/reachd/reachd/internal/statefile"
)

// ErrNotFound is returned for a service or path that is not configured
// (the API answers 404).
var ErrNotFound = errors.New("not found")

// ErrBadRequest marks a request the caller must fix (the API answers 400).
var ErrBadRequest = errors.New("bad request")

// OverrideStore keeps operator overrides in state-dir/overrides.json so
// that they survive a restart.
type OverrideStore struct{ file string }

// NewOverrideStore stores overrides under dir.
func NewOverrideStore(dir string) *OverrideStore {
	return &OverrideStore{file: filepath.Join(dir, "overrides.json")}
}

// Load returns the stored overrides. A missing file is empty. A damaged
// one (unreadable, not JSON, a value that is not up/down/auto) is moved
// aside and reported as a *statefile.Damaged error beside what could be
// read: every other path starts on auto, so probes decide.
func (s *OverrideStore) Load() (map[pathKey]policy.Override, error) {
	out := map[pathKey]policy.Override{}
	data, err := os.ReadFile(s.file)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, statefile.Quarantine(s.file, err, time.Now())
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return out, statefile.Quarantine(s.file, fmt.Errorf("not a JSON object of \"service/path\": \"up|down\": %w", err), time.Now())
	}
	var bad []string
	for k, v := range m {
		svc, p, ok := strings.Cut(k, "/")
		o, err := ParseOverride(v)
		if !ok || err != nil {
			bad = append(bad, fmt.Sprintf("%q: %q", k, v))
			continue
		}
		if o != policy.Auto {
			out[pathKey{svc, p}] = o
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return out, statefile.Quarantine(s.file, fmt.Errorf("entries that are not \"service/path\": \"up|down|auto\": %s", strings.Join(bad, ", ")), time.Now())
	}
	return out, nil
}

func (s *OverrideStore) save(m map[pathKey]policy.Override) error {
	out := map[string]string{}
	for k, o := range m {
		if o != policy.Auto {
			out[k.service+"/"+k.path] = o.String()
		}
	}
	data, _ := json.MarshalIndent(out, "", "  ")
	if err := os.MkdirAll(filepath.Dir(s.file), 0o755); err != nil {
		return fmt.Errorf("saving overrides: %w", err)
	}
	if err := atomicfile.WriteFile(s.file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving overrides: %w", err)
	}
	return nil
}

// ParseOverride reads up, down or auto.
func ParseOverride(s string) (policy.Override, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "up":
		return policy.ForceUp, nil
	case "down":
		return policy.ForceDown, nil
	case "auto", "":
		return policy.Auto, nil
	}
	return policy.Auto, fmt.Errorf("status %q is not up, down or auto", s)
}

// SetOverride forces a path up or down, or back to auto, and persists it.
func (e *Engine) SetOverride(ctx context.Context, service, pathName string, o policy.Override) error {
	var err error
	derr := e.do(ctx, func() { err = e.setOverride(service, pathName, o, "operator") })
	if derr != nil {
		return derr
	}
	return err
}

func (e *Engine) setOverride(service, pathName string, o policy.Override, source string) error {
	p := e.findPath(service, pathName)
	if p == nil {
		return fmt.Errorf("service %q path %q: %w", service, pathName, ErrNotFound)
	}
	k := pathKey{service, pathName}
	if e.overrides[k] == o {
		return nil
	}
	if o == policy.Auto {
		delete(e.overrides, k)
	} else {
		e.overrides[k] = o
	}
	e.log.Info("path override", "service", service, "path", pathName, "status", o.String(), "source", source)
	for _, ob := range e.opts.Observers {
		if w, ok := ob.(overrideWatcher); ok {
			w.Override(service, pathName, o, source)
		}
	}
	if e.opts.Overrides != nil {
		if err := e.opts.Overrides.save(e.overrides); err != nil {
			e.log.Error("persisting override", "err", err)
		}
	}
	reason := "override set back to auto"
	e.refreshPath(p, reason)
	return nil
}

func (e *Engine) findPath(service, name string) *path {
	for _, s := range e.services {
		if s.cfg.Name != service {
			continue
		}
		for _, p := range s.paths {
			if p.cfg.Name == name {
				return p
			}
		}
	}
	return nil
}

// resolveName splits the seed's generated name {service}-{path}; service
// and path names may themselves contain '-', so every configured pair is
// tried.
func (e *Engine) resolveName(name string) (string, string, bool) {
	for _, s := range e.services {
		for _, p := range s.paths {
			if s.cfg.Name+"-"+p.cfg.Name == name {
				return s.cfg.Name, p.cfg.Name, true
			}
		}
	}
	return "", "", false
}

// readStateFile parses a seed state file: lines KEY=VALUE; the last STATUS
// wins (the seed appends with >>).
func readStateFile(name string) (string, bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	status, found := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && strings.TrimSpace(k) == "STATUS" {
			status, found = strings.Trim(strings.TrimSpace(v), `"'`), true
		}
	}
	return status, found, sc.Err()
}
