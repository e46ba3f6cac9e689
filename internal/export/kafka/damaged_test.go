package kafka

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDamagedSpoolSegments: a truncated, an empty and a garbage spooled
// message (left by a crash or a bad disk) are moved aside with a log line
// naming each file, counted, never sent; the good messages around them are
// delivered in order; a message damaged after start does not stall delivery.
func TestDamagedSpoolSegments(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	p := newProducer(t, port, dir, nil)
	for _, f := range []string{"a", "b", "c", "d"} {
		if err := p.Report(f, StatusFailed); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	names, _, _ := p.spool.peek(10)
	if len(names) != 4 {
		t.Fatalf("spooled %v", names)
	}
	full, _ := os.ReadFile(filepath.Join(dir, names[1]))
	os.WriteFile(filepath.Join(dir, names[1]), full[:len(full)/2], 0o600) // truncated
	os.WriteFile(filepath.Join(dir, names[2]), nil, 0o600)                // empty
	os.WriteFile(filepath.Join(dir, "00000000000000000099.json"), []byte("\x00\xffgarbage"), 0o600)

	var logs syncBuf
	p2 := newProducer(t, port, dir, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	if st := p2.Stats(); st.Spooled != 2 || st.Damaged != 3 {
		t.Fatalf("reopened spool: %+v, want 2 spooled and 3 damaged", st)
	}
	for _, n := range []string{names[1], names[2], "00000000000000000099.json"} {
		if !strings.Contains(logs.String(), filepath.Join(dir, n)+" is damaged") {
			t.Errorf("no log line names %s:\n%s", n, logs.String())
		}
	}
	moved, _ := filepath.Glob(filepath.Join(dir, "*.damaged-*"))
	if len(moved) != 3 {
		t.Errorf("moved aside: %v", moved)
	}
	// Damage after start: the last good message goes bad before delivery.
	names2, _, _ := p2.spool.peek(10)
	os.WriteFile(filepath.Join(dir, names2[1]), []byte(`{"payload":`), 0o600)

	cluster(t, port)
	run(t, p2)
	got := consume(t, port, 1)
	if diff := cmp.Diff([]string{"a=FAILED"}, statuses(got)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	waitFor(t, "spool drained", func() bool { return p2.Stats().Spooled == 0 })
	// The delivery stores the spool's new length before it counts what the
	// brokers acknowledged: wait for the count, not only the empty spool.
	waitFor(t, "the report counted as produced", func() bool { return p2.Stats().Produced >= 1 })
	if st := p2.Stats(); st.Damaged != 4 || st.Produced != 1 {
		t.Errorf("stats %+v, want 4 damaged, 1 produced", st)
	}
}
