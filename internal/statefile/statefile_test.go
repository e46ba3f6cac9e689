package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuarantine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "overrides.json")
	os.WriteFile(file, []byte("{trunc"), 0o644)
	cause := errors.New("unexpected end of JSON input")
	d := Quarantine(file, cause, time.Date(2026, 12, 4, 21, 0, 0, 5, time.UTC))
	if want := file + ".damaged-20261204T210000.000000005Z"; d.MovedTo != want {
		t.Errorf("moved to %q, want %q", d.MovedTo, want)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Error("the damaged file is still in place")
	}
	if b, _ := os.ReadFile(d.MovedTo); string(b) != "{trunc" {
		t.Errorf("moved copy holds %q", b)
	}
	if !errors.Is(d, cause) || !strings.Contains(d.Error(), "state file "+file+" is damaged (unexpected end of JSON input); moved aside to ") {
		t.Errorf("error %q", d)
	}
	// A file that cannot be moved is reported as left in place.
	d = Quarantine(filepath.Join(dir, "missing", "x"), cause, time.Now())
	if d.MovedTo != "" || !strings.Contains(d.Error(), "left in place") {
		t.Errorf("unmovable: %+v %q", d, d)
	}
}
