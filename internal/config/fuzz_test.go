package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds the config loader arbitrary bytes: it must never panic,
// and every problem must come back as config.Errors naming the file (what
// reload shows an operator). Seeds: every config under testdata, good and
// bad, plus the committed corpus in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, file := range append(files, more...) {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if c == nil || c.File != "fuzz.yaml" {
				t.Fatalf("Parse accepted the file but returned %+v", c)
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("Parse error %T %v is not config.Errors", err, err)
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", e)
			}
		}
	})
}
