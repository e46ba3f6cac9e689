package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/reachd/reachd/internal/atomicfile"
)

// forceStore keeps operators' forced group modes, persisted as JSON
// ({"group": "force-on"}) so that they survive a restart (seed: force_on /
// force_off of fbypass_ctl).
type forceStore struct {
	file string
	m    map[string]Force
}

func loadForces(file string) (*forceStore, error) {
	s := &forceStore{file: file, m: map[string]Force{}}
	if file == "" {
		return s, nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading forced bypass modes: %w", err)
	}
	var raw map[string]string
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("forced bypass modes in %s are corrupt (fix or remove the file): %w", file, err)
	}
	for g, v := range raw {
		f, err := ParseForce(v)
		if err != nil {
			return nil, fmt.Errorf("%s: group %q: %w", file, g, err)
		}
		if f != Auto {
			s.m[g] = f
		}
	}
	return s, nil
}

func (s *forceStore) all() map[string]Force { return maps.Clone(s.m) }

func (s *forceStore) set(group string, f Force) error {
	old, had := s.m[group]
	if f == Auto {
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
