package kafka

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/reachd/reachd/internal/atomicfile"
)

// spool is a directory with one file per message, named by a sequence
// number (so that name order is send order): written to a temporary file,
// fsynced, renamed and the directory fsynced, so a message that Add
// accepted survives a crash; removed once the brokers acknowledged it.
// It is used from one goroutine at a time (Producer holds a mutex).
type spool struct {
	dir   string
	max   int
	next  uint64
	names []string // pending, oldest first
}

const spoolExt = ".json"

func openSpool(dir string, max int) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading spool directory: %w", err)
	}
	s := &spool{dir: dir, max: max}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"), strings.HasPrefix(name, ".tmp-"):
			// A write that did not finish: it was never accepted.
			os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, spoolExt):
			n, err := strconv.ParseUint(strings.TrimSuffix(name, spoolExt), 10, 64)
			if err != nil {
				continue // not ours
			}
			s.names = append(s.names, name)
			s.next = max64(s.next, n+1)
		}
	}
	slices.Sort(s.names) // zero-padded: lexical order is numeric order
	return s, nil
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// add stores data durably. When the spool is full the oldest messages are
// removed to make room; it returns how many.
func (s *spool) add(data []byte) (dropped int, err error) {
	for len(s.names) >= s.max {
		if err := s.remove(s.names[0]); err != nil {
			return dropped, err
		}
		dropped++
	}
	name := fmt.Sprintf("%020d%s", s.next, spoolExt)
	s.next++
	if err := atomicfile.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
		return dropped, fmt.Errorf("spooling message: %w", err)
	}
	s.names = append(s.names, name)
	return dropped, nil
}

// peek returns up to n of the oldest messages with their names.
func (s *spool) peek(n int) (names []string, data [][]byte, err error) {
	for _, name := range s.names[:min(n, len(s.names))] {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			return names, data, fmt.Errorf("reading spooled message: %w", err)
		}
		names = append(names, name)
		data = append(data, b)
	}
	return names, data, nil
}

// ack removes delivered messages.
func (s *spool) ack(names []string) error {
	var errs []error
	for _, n := range names {
		errs = append(errs, s.remove(n))
	}
	errs = append(errs, atomicfile.SyncDir(s.dir))
	return errors.Join(errs...)
}

func (s *spool) remove(name string) error {
	if i := slices.Index(s.names, name); i >= 0 {
		s.names = slices.Delete(s.names, i, i+1)
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing spooled message: %w", err)
	}
	return nil
}

func (s *spool) len() int { return len(s.names) }
