package linkplan

import (
	"fmt"
	"strconv"
	"time"
)

// ParseDuration accepts plain (possibly fractional) seconds or a Go duration,
// zero or more: the config's durations and the API's on-demand link tests.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration; write seconds (10) or a Go duration (250ms)")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 {
			return 0, fmt.Errorf("%q is negative; durations are zero or more", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write seconds (10) or a Go duration (250ms)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative; durations are zero or more", s)
	}
	return v, nil
}
