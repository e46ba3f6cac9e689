// Package statefile is what reachd does with a state file it finds damaged
// (truncated, garbage, unreadable): it moves the file aside, so that the
// evidence is kept and the next start does not trip on it again, and says
// where it went. Callers log one line naming the file and what they did
// instead; a damaged state file never stops the daemon.
package statefile

import (
	"fmt"
	"os"
	"time"
)

// Damaged describes a damaged state file and where it was moved.
type Damaged struct {
	File    string // the state file
	MovedTo string // where the damaged copy is now; "" if it could not be moved
	Err     error  // what was wrong with it
}

func (d *Damaged) Error() string {
	kept := "left in place (could not move it aside)"
	if d.MovedTo != "" {
		kept = "moved aside to " + d.MovedTo
	}
	return fmt.Sprintf("state file %s is damaged (%v); %s", d.File, d.Err, kept)
}

func (d *Damaged) Unwrap() error { return d.Err }

// Quarantine moves file aside to FILE.damaged-TIMESTAMP and returns the
// Damaged error that callers log.
func Quarantine(file string, cause error, now time.Time) *Damaged {
	d := &Damaged{File: file, Err: cause}
	to := fmt.Sprintf("%s.damaged-%s", file, now.UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(file, to); err == nil {
		d.MovedTo = to
	}
	return d
}
