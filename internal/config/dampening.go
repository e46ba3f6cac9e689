package config

import (
	"math"
	"time"
)

// Dampening is a path's optional route-flap dampening (RFC 2439 style):
// each up → down flap adds penalty to a figure of merit that halves every
// half-life; at suppress-threshold the path is kept out of service until the
// figure has decayed below reuse-threshold, and never longer than
// max-suppress after the last flap. `dampening: {}` takes every default.
type Dampening struct {
	Penalty     int      `yaml:"penalty"`            // default 1000
	Suppress    int      `yaml:"suppress-threshold"` // default 2000
	Reuse       int      `yaml:"reuse-threshold"`    // default 750
	HalfLife    Duration `yaml:"half-life"`          // default 60s
	MaxSuppress Duration `yaml:"max-suppress"`       // default 15m
}

// Dampening defaults (BGP's numbers for penalty and thresholds, a shorter
// half-life because paths are probed every few seconds, not minutes).
const (
	DefaultDampeningPenalty     = 1000
	DefaultDampeningSuppress    = 2000
	DefaultDampeningReuse       = 750
	DefaultDampeningHalfLife    = 60 * time.Second
	DefaultDampeningMaxSuppress = 15 * time.Minute
)

func (c *checker) dampening(pp string, d *Dampening) {
	if d == nil {
		return
	}
	dp := pp + ".dampening"
	def := func(key string, v *int, dflt int) {
		switch {
		case *v == 0:
			*v = dflt
		case *v < 0:
			c.add(dp+"."+key, "%d must be more than 0", *v)
		}
	}
	def("penalty", &d.Penalty, DefaultDampeningPenalty)
	def("suppress-threshold", &d.Suppress, DefaultDampeningSuppress)
	def("reuse-threshold", &d.Reuse, DefaultDampeningReuse)
	c.duration(dp+".half-life", &d.HalfLife, DefaultDampeningHalfLife)
	c.duration(dp+".max-suppress", &d.MaxSuppress, DefaultDampeningMaxSuppress)
	if d.HalfLife.bad == "" && d.HalfLife.D < time.Second {
		c.add(dp+".half-life", "%v is too short; use at least 1s (e.g. 60s)", d.HalfLife.D)
	}
	if d.Reuse > 0 && d.Suppress > 0 && d.Reuse >= d.Suppress {
		c.add(dp+".reuse-threshold", "%d must be below suppress-threshold %d, or a suppressed path could never come back", d.Reuse, d.Suppress)
	}
	if d.HalfLife.bad == "" && d.MaxSuppress.bad == "" && d.MaxSuppress.D < d.HalfLife.D {
		c.add(dp+".max-suppress", "%v is shorter than half-life %v; raise max-suppress (RFC 2439 caps the penalty at reuse·2^(max-suppress/half-life))", d.MaxSuppress.D, d.HalfLife.D)
	} else if d.HalfLife.D > 0 && d.Reuse > 0 {
		// The ceiling reuse·2^(max-suppress/half-life) must reach suppress,
		// or the path would never be suppressed.
		ceiling := float64(d.Reuse) * math.Exp2(float64(d.MaxSuppress.D)/float64(d.HalfLife.D))
		if ceiling < float64(d.Suppress) {
			c.add(dp+".max-suppress", "%v with half-life %v caps the penalty at %.0f, below suppress-threshold %d: the path could never be suppressed; raise max-suppress",
				d.MaxSuppress.D, d.HalfLife.D, ceiling, d.Suppress)
		}
	}
}
