package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/atomicfile"
	"github.com/reachd/reachd/internal/policy/threshold"
	"github.com/reachd/reachd/internal/statefile"
)

// forceStore keeps operators' forced group modes, persisted as JSON
// ({"group": "force-on"}) so that they survive a restart (seed: force_on /
// force_off of fbypass_ctl).
type forceStore struct {
	file string
	m    map[string]threshold.Force
}

// loadForces reads the forced modes. A missing file is empty; a damaged
// one (unreadable, not JSON, an unknown mode) is moved aside and reported
// as a *statefile.Damaged error beside a usable store holding what could be
// read: the other groups are on auto, heartbeats decide.
func loadForces(file string) (*forceStore, error) {
	s := &forceStore{file: file, m: map[string]threshold.Force{}}
	if file == "" {
		return s, nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, statefile.Quarantine(file, err, time.Now())
	}
	var raw map[string]string
	if err := json.Unmarshal(data, &raw); err != nil {
		return s, statefile.Quarantine(file, fmt.Errorf("not a JSON object of \"group\": \"force-on|force-off\": %w", err), time.Now())
	}
	var bad []string
	for g, v := range raw {
		f, err := threshold.ParseForce(v)
		if err != nil {
			bad = append(bad, fmt.Sprintf("group %q: %v", g, err))
			continue
		}
		if f != threshold.Auto {
			s.m[g] = f
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return s, statefile.Quarantine(file, errors.New(strings.Join(bad, "; ")), time.Now())
	}
	return s, nil
}

func (s *forceStore) all() map[string]threshold.Force { return maps.Clone(s.m) }

func (s *forceStore) set(group string, f threshold.Force) error {
	old, had := s.m[group]
	if f == threshold.Auto {
		delete(s.m, group)
	} else {
		s.m[group] = f
	}
	if err := s.save(); err != nil {
		if had {
			s.m[group] = old
		} else {
			delete(s.m, group)
		}
		return err
	}
	return nil
}

func (s *forceStore) save() error {
	if s.file == "" {
		return nil
	}
	raw := map[string]string{}
	for g, f := range s.m {
		raw[g] = f.String()
	}
	data, _ := json.MarshalIndent(raw, "", "  ")
	if err := os.MkdirAll(filepath.Dir(s.file), 0o755); err != nil {
		return fmt.Errorf("saving forced bypass modes: %w", err)
	}
	if err := atomicfile.WriteFile(s.file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving forced bypass modes: %w", err)
	}
	return nil
}
