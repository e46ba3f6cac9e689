//go:build !linux

package clock

import "time"

// ShortSlices does nothing outside Linux: 0 is accepted, anything else
// answers ErrSliceIgnored.
func ShortSlices(d time.Duration) (int, error) {
	if d == 0 {
		return 0, nil
	}
	return 0, ErrSliceIgnored
}
