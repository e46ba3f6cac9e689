package labdaemon

import (
	"os"
	"path/filepath"
	"testing"
)

// LogSince returns whole lines only, each once, and Log the whole file.
func TestLogSince(t *testing.T) {
	r := &Reachd{Dir: t.TempDir()}
	if s, off := r.LogSince(0); s != "" || off != 0 {
		t.Errorf("no log yet: %q, %d", s, off)
	}
	f, err := os.Create(filepath.Join(r.Dir, "reachd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("one\ntw")
	s, off := r.LogSince(0)
	if s != "one\n" || off != 4 {
		t.Errorf("got %q, %d; want the whole line only", s, off)
	}
	if s2, off2 := r.LogSince(off); s2 != "" || off2 != off {
		t.Errorf("half a line: got %q, %d", s2, off2)
	}
	f.WriteString("o\nthree\n")
	if s, off = r.LogSince(off); s != "two\nthree\n" || off != 14 {
		t.Errorf("got %q, %d", s, off)
	}
	if got := r.Log(); got != "one\ntwo\nthree\n" {
		t.Errorf("Log() = %q", got)
	}
}
