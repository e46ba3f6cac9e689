package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// badCorpus returns the bad-config corpus: every testdata/bad/*.yaml with
// the exact errors it must give, from its trailing "# want: LINE: key: msg"
// lines (Load prefixes each with the file name). e2e's TestBadConfigReloads
// reloads a running daemon with the same files.
func badCorpus(t testing.TB, dir string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", dir, err)
	}
	out := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if w, ok := strings.CutPrefix(line, "# want: "); ok {
				out[f] = append(out[f], w)
			}
		}
		if len(out[f]) == 0 {
			t.Fatalf("%s has no # want: line", f)
		}
	}
	return out
}

// TestBadConfigCorpus: each bad config gives exactly its expected errors,
// each naming the file, the line and the key.
func TestBadConfigCorpus(t *testing.T) {
	corpus := badCorpus(t, "testdata/bad")
	if len(corpus) < 40 {
		t.Errorf("corpus has %d cases, want at least 40", len(corpus))
	}
	for file, want := range corpus {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file)
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Load = %v, want config.Errors", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, strings.TrimPrefix(e.Error(), file+":"))
				if !strings.HasPrefix(e.Error(), file+":") || e.Key == "" {
					t.Errorf("error %q lacks the file or the key", e)
				}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
}
