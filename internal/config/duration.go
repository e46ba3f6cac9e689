package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a config duration. It accepts plain seconds ("10", "0.2") as the
// seed document does, and Go durations ("250ms", "1m30s").
//
// Decoding never fails: a bad value is remembered and reported by Validate with
// its file, line and key, so that every error of a file is shown at once.
type Duration struct {
	D   time.Duration
	set bool
	bad string
}

// Secs builds a Duration of s seconds (used for defaults and in tests).
func Secs(s float64) Duration { return Duration{D: time.Duration(s * float64(time.Second)), set: true} }

// Set reports whether the key was present in the file.
func (d Duration) Set() bool { return d.set }

// UnmarshalYAML implements goccy/go-yaml's BytesUnmarshaler.
func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.TrimSpace(string(b))
	s = strings.Trim(s, `"'`)
	d.set = true
	v, err := ParseDuration(s)
	if err != nil {
		d.bad = err.Error()
		return nil
	}
	d.D = v
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(d.D.String()), nil }

// String returns the Go duration form.
func (d Duration) String() string { return d.D.String() }

// ParseDuration accepts plain (possibly fractional) seconds or a Go duration.
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
