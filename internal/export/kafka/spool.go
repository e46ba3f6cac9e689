package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/atomicfile"
	"github.com/reachd/reachd/internal/statefile"
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
	// inflight are the names peek returned to the delivery attempt under
	// way; droppedInflight those of them add dropped meanwhile. Such a
	// message is lost only if the attempt fails: the brokers may well
	// acknowledge it, and counting it as dropped then would report a
	// loss that did not happen.
	inflight        map[string]bool
	droppedInflight []string
}

const spoolExt = ".json"

// openSpool opens dir. Damaged messages (empty, truncated or not JSON) are
// moved aside and returned for the log; they are never sent.
func openSpool(dir string, max int) (*spool, []*statefile.Damaged, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("creating spool directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading spool directory: %w", err)
	}
	var damaged []*statefile.Damaged
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
			s.next = max64(s.next, n+1)
			if _, err := readMessage(filepath.Join(dir, name)); err != nil {
				damaged = append(damaged, statefile.Quarantine(filepath.Join(dir, name), err, time.Now()))
				continue
			}
			s.names = append(s.names, name)
		}
	}
	slices.Sort(s.names) // zero-padded: lexical order is numeric order
	return s, damaged, nil
}

// readMessage reads one spooled message and checks that it is whole: the
// spool writes complete JSON documents, so anything else is damage.
func readMessage(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty message")
	}
	if !json.Valid(b) {
		return nil, errors.New("truncated or not JSON")
	}
	return b, nil
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// add stores data durably. When the spool is full the oldest messages are
// removed to make room; it returns how many of them are lost (those being
// delivered are counted by ack, when the attempt's outcome is known).
func (s *spool) add(data []byte) (dropped int, err error) {
	for len(s.names) >= s.max {
		oldest := s.names[0]
		if err := s.remove(oldest); err != nil {
			return dropped, err
		}
		if s.inflight[oldest] {
			s.droppedInflight = append(s.droppedInflight, oldest)
		} else {
			dropped++
		}
	}
	name := fmt.Sprintf("%020d%s", s.next, spoolExt)
	s.next++
	if err := atomicfile.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
		return dropped, fmt.Errorf("spooling message: %w", err)
	}
	s.names = append(s.names, name)
	return dropped, nil
}

// peek returns up to n of the oldest messages with their names. A message
// damaged since it was spooled is moved aside, dropped from the spool and
// returned in damaged, so one bad file cannot stall delivery.
func (s *spool) peek(n int) (names []string, data [][]byte, damaged []*statefile.Damaged) {
	for _, name := range slices.Clone(s.names[:min(n, len(s.names))]) {
		file := filepath.Join(s.dir, name)
		b, err := readMessage(file)
		if err != nil {
			damaged = append(damaged, statefile.Quarantine(file, err, time.Now()))
			if i := slices.Index(s.names, name); i >= 0 {
				s.names = slices.Delete(s.names, i, i+1)
			}
			continue
		}
		names = append(names, name)
		data = append(data, b)
	}
	s.inflight = make(map[string]bool, len(names))
	for _, n := range names {
		s.inflight[n] = true
	}
	s.droppedInflight = nil
	return names, data, damaged
}

// ack ends the delivery attempt of the last peek: it removes the messages
// the brokers acknowledged and returns how many of those add dropped
// during the attempt were not acknowledged (lost).
func (s *spool) ack(acked []string) (lost int, err error) {
	var errs []error
	done := make(map[string]bool, len(acked))
	for _, n := range acked {
		done[n] = true
		errs = append(errs, s.remove(n))
	}
	for _, n := range s.droppedInflight {
		if !done[n] {
			lost++
		}
	}
	s.inflight, s.droppedInflight = nil, nil
	errs = append(errs, atomicfile.SyncDir(s.dir))
	return lost, errors.Join(errs...)
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
