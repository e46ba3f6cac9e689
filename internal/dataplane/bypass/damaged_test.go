package bypass

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/reachd/reachd/internal/statefile"
)

// TestDamagedStateFile: a truncated, garbage or wrong bypass-changed.json
// does not fail New (a daemon that exits on it would restart into it): the
// file is moved aside, nothing is recorded as changed, LoadError says so.
func TestDamagedStateFile(t *testing.T) {
	good := `{"removed": {"wan0 192.0.2.10": [{"interface": "wan0", "address": "192.0.2.10/24"}]}, "downed": ["lan1"]}`
	for name, content := range map[string]string{
		"truncated":   good[:40],
		"garbage":     "\x00\x01\x02 not json",
		"bad address": `{"removed": {"x": [{"interface": "wan0", "address": "192.0.2.300/24"}]}, "downed": ["lan1"]}`,
		"wrong shape": `["wan0"]`,
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bypass-changed.json")
			os.WriteFile(file, []byte(content), 0o644)
			a, err := New(nil, file)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			var d *statefile.Damaged
			if !errors.As(a.LoadError(), &d) || d.File != file || d.MovedTo == "" {
				t.Fatalf("LoadError %v", a.LoadError())
			}
			if c := a.Changed(); len(c.Removed) != 0 || len(c.Downed) != 0 {
				t.Errorf("recorded as changed from a damaged file: %+v", c)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "bypass-changed.json")
	os.WriteFile(file, []byte(good), 0o644)
	a, err := New(nil, file)
	if err != nil || a.LoadError() != nil {
		t.Fatalf("good file: %v, %v", err, a.LoadError())
	}
	if c := a.Changed(); len(c.Removed) != 1 || len(c.Downed) != 1 {
		t.Errorf("good file read as %+v", c)
	}
}
