package heartbeat

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/reachd/reachd/internal/policy/threshold"
	"github.com/reachd/reachd/internal/statefile"
)

// TestDamagedForceFile: a damaged bypass-force.json gives a usable store
// (groups on auto, the readable entries kept) and a Damaged error naming
// the file, never a failure to start.
func TestDamagedForceFile(t *testing.T) {
	tests := []struct {
		name, content string
		kept          map[string]threshold.Force
	}{
		{"truncated", `{"edge": "force-o`, map[string]threshold.Force{}},
		{"garbage", "\xff\xfe", map[string]threshold.Force{}},
		{"unknown mode", `{"edge": "force-on", "core": "sideways"}`, map[string]threshold.Force{"edge": threshold.ForceOn}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bypass-force.json")
			os.WriteFile(file, []byte(tt.content), 0o644)
			s, err := loadForces(file)
			var d *statefile.Damaged
			if !errors.As(err, &d) || d.File != file || d.MovedTo == "" {
				t.Fatalf("err %v", err)
			}
			if s == nil || len(s.all()) != len(tt.kept) || s.all()["edge"] != tt.kept["edge"] {
				t.Errorf("store %+v, want %v", s, tt.kept)
			}
			// The store still saves (a fresh file).
			if err := s.set("edge", threshold.ForceOff); err != nil {
				t.Fatal(err)
			}
			if s2, err := loadForces(file); err != nil || s2.all()["edge"] != threshold.ForceOff {
				t.Errorf("after save: %v, %v", s2.all(), err)
			}
		})
	}
}
