//go:build !linux

package clock

import (
	"errors"
	"time"
)

// The range of time slices Linux accepts.
const (
	MinSlice = 100 * time.Microsecond
	MaxSlice = 100 * time.Millisecond
)

// ErrSliceIgnored: there are no custom time slices here.
var ErrSliceIgnored = errors.New("custom time slices need Linux 6.12 or later")

// ShortSlices does nothing outside Linux.
func ShortSlices(d time.Duration) (int, error) {
	if d == 0 {
		return 0, nil
	}
	return 0, ErrSliceIgnored
}
