package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reachd/reachd/internal/linkplan"
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

// UnmarshalYAML implements goccy/go-yaml's InterfaceUnmarshaler. (As a
// BytesUnmarshaler it was handed the value as text, which the decoder
// makes by formatting the node, at a cost that grows with the whole file:
// 130 MB of garbage for a 50,000-target config.)
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	d.set = true
	if err := unmarshal(&v); err != nil {
		d.bad = err.Error()
		return nil
	}
	var s string
	switch x := v.(type) {
	case nil:
		s = "null"
	case string:
		s = strings.TrimSpace(x)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		s = fmt.Sprint(x)
	}
	p, err := ParseDuration(s)
	if err != nil {
		d.bad = err.Error()
		return nil
	}
	d.D = p
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(d.D.String()), nil }

// String returns the Go duration form.
func (d Duration) String() string { return d.D.String() }

// ParseDuration accepts plain (possibly fractional) seconds or a Go
// duration; it is linkplan.ParseDuration, which the API's on-demand link
// tests parse with too.
func ParseDuration(s string) (time.Duration, error) { return linkplan.ParseDuration(s) }
