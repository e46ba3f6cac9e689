package monitor

import (
	"fmt"
	"math"
	"time"
)

// DampeningConfig is route-flap dampening for one path, as BGP does it
// (RFC 2439 §4.2): every flap adds Penalty to a figure of merit that decays
// exponentially with HalfLife; above Suppress the path is kept out of
// service, and it comes back when the figure has decayed below Reuse. The
// figure never exceeds the ceiling Reuse·2^(MaxSuppress/HalfLife), so a path
// that stops flapping is suppressed for at most MaxSuppress.
type DampeningConfig struct {
	Penalty     float64       // added per flap (up → down)
	Suppress    float64       // suppress at or above this figure
	Reuse       float64       // reuse below this figure; < Suppress
	HalfLife    time.Duration // the figure halves in this time
	MaxSuppress time.Duration // longest suppression after the last flap
}

// Defaults for a path (BGP's are 15 min half-life for routes that flap in
// minutes; a path probed every few seconds flaps faster).
var DefaultDampening = DampeningConfig{
	Penalty:     1000,
	Suppress:    2000,
	Reuse:       750,
	HalfLife:    60 * time.Second,
	MaxSuppress: 15 * time.Minute,
}

// Ceiling is the highest figure of merit (RFC 2439 §4.2 "ceiling").
func (c DampeningConfig) Ceiling() float64 {
	if c.HalfLife <= 0 {
		return c.Reuse
	}
	return c.Reuse * math.Exp2(float64(c.MaxSuppress)/float64(c.HalfLife))
}

// Dampener is the dampening state of one path. Pure: time comes in as
// arguments.
//
//	Free ──flap, figure ≥ suppress──► Suppressed
//	Suppressed ──figure decayed below reuse──► Free
//	(a flap while suppressed raises the figure and moves the reuse time later)
type Dampener struct {
	cfg        DampeningConfig
	figure     float64   // figure of merit at at
	at         time.Time // when figure was last computed
	suppressed bool
	reuseAt    time.Time // while suppressed: when the figure reaches reuse

	Flaps uint64 // flaps counted since start
}

// NewDampener returns a dampener with no penalty.
func NewDampener(cfg DampeningConfig) *Dampener { return &Dampener{cfg: cfg} }

// Config returns the parameters.
func (d *Dampener) Config() DampeningConfig { return d.cfg }

// SetConfig changes the parameters on reload, keeping the figure; a
// suppressed path gets its reuse time recomputed.
func (d *Dampener) SetConfig(cfg DampeningConfig, now time.Time) {
	d.decay(now)
	d.cfg = cfg
	if c := cfg.Ceiling(); d.figure > c {
		d.figure = c
	}
	if d.suppressed {
		d.reuseAt = d.reuseTime()
	}
	d.update(now)
}

func (d *Dampener) decay(now time.Time) {
	if d.figure == 0 || d.cfg.HalfLife <= 0 {
		d.at = now
		return
	}
	if dt := now.Sub(d.at); dt > 0 {
		d.figure *= math.Exp2(-float64(dt) / float64(d.cfg.HalfLife))
		if d.figure < 1e-3 {
			d.figure = 0
		}
	}
	d.at = now
}

// reuseTime is when the current figure decays to Reuse.
func (d *Dampener) reuseTime() time.Time {
	if d.figure <= d.cfg.Reuse || d.cfg.HalfLife <= 0 {
		return d.at
	}
	halves := math.Log2(d.figure / d.cfg.Reuse)
	return d.at.Add(time.Duration(math.Ceil(halves * float64(d.cfg.HalfLife))))
}

// update moves between free and suppressed at now (figure decayed to now).
func (d *Dampener) update(now time.Time) {
	switch {
	case !d.suppressed && d.figure >= d.cfg.Suppress:
		d.suppressed = true
		d.reuseAt = d.reuseTime()
	case d.suppressed && !now.Before(d.reuseAt):
		d.suppressed = false
	}
}

// Flap records a flap at now and reports whether the path is suppressed.
func (d *Dampener) Flap(now time.Time) bool {
	d.Flaps++
	d.decay(now)
	d.figure += d.cfg.Penalty
	if c := d.cfg.Ceiling(); d.figure > c {
		d.figure = c
	}
	if d.suppressed {
		d.reuseAt = d.reuseTime()
	}
	d.update(now)
	return d.suppressed
}

// Suppressed reports whether the path is kept out of service at now.
func (d *Dampener) Suppressed(now time.Time) bool {
	d.decay(now)
	d.update(now)
	return d.suppressed
}

// ReuseAt is when a suppressed path comes back if it does not flap again;
// zero when not suppressed.
func (d *Dampener) ReuseAt() time.Time {
	if !d.suppressed {
		return time.Time{}
	}
	return d.reuseAt
}

// Figure is the figure of merit at now.
func (d *Dampener) Figure(now time.Time) float64 {
	d.decay(now)
	return d.figure
}

// Reason explains a suppression for logs and status.
func (d *Dampener) Reason(now time.Time) string {
	return fmt.Sprintf("suppressed by dampening: penalty %.0f ≥ %.0f after %d flaps, reuse below %.0f at %s",
		d.Figure(now), d.cfg.Suppress, d.Flaps, d.cfg.Reuse, d.reuseAt.UTC().Format(time.RFC3339))
}
