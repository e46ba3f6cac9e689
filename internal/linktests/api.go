package linktests

import (
	"context"
	"errors"
	"fmt"
	"github.com/reachd/reachd/internal/linkplan"
	"net/http"
	"net/netip"
	"time"

	"github.com/reachd/reachd/internal/api"
	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/probe/linktest"
)

// Request is the body of POST /v1/linktest: one on-demand test. Zero
// values take the measuring package's defaults (TTL 254, 100 probes of
// 1500 bytes, 2s timeout).
type Request struct {
	Interface   string `json:"interface"`
	LoopAddress string `json:"loop-address"`
	TTL         int    `json:"ttl,omitempty"`
	AllowOddTTL bool   `json:"allow-odd-ttl,omitempty"`
	Count       int    `json:"count,omitempty"`
	Size        int    `json:"size,omitempty"`
	// Interval and Timeout are durations: "100us", "2s" (or seconds, "2").
	Interval string `json:"interval,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
	// Fill ("20%") measures the production load over LoadWindow
	// (default "10s"; "0" leaves it out) and the RTT, then sizes the
	// burst instead of Count, as a share of LinkSpeed ("1G"; default what
	// the kernel reports for the interface).
	Fill       string `json:"fill,omitempty"`
	LinkSpeed  string `json:"link-speed,omitempty"`
	LoadWindow string `json:"load-window,omitempty"`
	Mark       int    `json:"mark,omitempty"`
	// DSCP marks the probes: "ef", "af41", "cs1" or "0".."63".
	DSCP string `json:"dscp,omitempty"`
	// Until "max-loss" with MaxLoss ("1%") runs a sequential test: rounds
	// of Round probes until the loss is clearly above or below MaxLoss
	// at Confidence (default "95%"), at most Count.
	Until      string `json:"until,omitempty"`
	MaxLoss    string `json:"max-loss,omitempty"`
	Confidence string `json:"confidence,omitempty"`
	Round      int    `json:"round,omitempty"`
}

// Options converts the request; errors wrap api.ErrBadRequest.
func (r Request) Options() (linktest.Options, error) {
	o := linktest.Options{Interface: r.Interface, TTL: r.TTL, AllowOddTTL: r.AllowOddTTL, Count: r.Count, Size: r.Size, Mark: r.Mark}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if a, err := netip.ParseAddr(r.LoopAddress); err != nil {
		bad("loop-address %q: not an IP address; give the address both routers route at each other, e.g. 169.254.255.1", r.LoopAddress)
	} else {
		o.Loop = a
	}
	for _, d := range []struct {
		name, s string
		to      *time.Duration
	}{{"interval", r.Interval, &o.Interval}, {"timeout", r.Timeout, &o.Timeout}} {
		if d.s == "" {
			continue
		}
		v, err := config.ParseDuration(d.s)
		if err != nil {
			bad("%s: %v", d.name, err)
		}
		*d.to = v
	}
	if r.LinkSpeed != "" && r.Fill == "" {
		bad("link-speed is only used with fill; add fill (e.g. 20%%) or leave link-speed out")
	}
	if r.Fill != "" {
		f, err := linkplan.ParsePercent(r.Fill)
		if err != nil {
			bad("fill: %v", err)
		}
		o.Fill = f
		if r.LinkSpeed != "" {
			sp, err := linkplan.ParseSpeed(r.LinkSpeed)
			if err != nil {
				bad("link-speed: %v", err)
			}
			o.LinkSpeed = sp
		}
		if r.LoadWindow != "" {
			w, err := config.ParseDuration(r.LoadWindow)
			switch {
			case err != nil:
				bad("load-window: %v", err)
			case w == 0:
				o.IgnoreProduction = true
			default:
				o.LoadWindow = w
			}
		}
	} else if r.LoadWindow != "" {
		bad("load-window is only used with fill")
	}
	if r.DSCP != "" {
		d, err := linkplan.ParseDSCP(r.DSCP)
		if err != nil {
			bad("%v", err)
		}
		o.DSCP = d
	}
	switch r.Until {
	case "":
		if r.Confidence != "" || r.Round != 0 {
			bad("confidence and round belong to until max-loss")
		}
	case "max-loss":
		o.Sequential, o.Round = true, r.Round
		ml, err := linkplan.ParsePercent(r.MaxLoss)
		if err != nil {
			bad("max-loss: %v (until max-loss needs it)", err)
		}
		o.MaxLoss = ml
		if r.Confidence != "" {
			c, err := linkplan.ParsePercent(r.Confidence)
			if err != nil {
				bad("confidence: %v", err)
			}
			o.Confidence = c
		}
	default:
		bad("until %q: the only value is max-loss", r.Until)
	}
	if r.MaxLoss != "" && r.Until == "" {
		bad("max-loss is only used with until max-loss")
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	return o, nil
}

// Status is one scheduled test in GET /v1/linktests.
type Status struct {
	Name           string           `json:"name"`
	Interface      string           `json:"interface"`
	Loop           string           `json:"loop-address"`
	Interval       string           `json:"interval"`
	MaxLossPercent *float64         `json:"max-loss-percent,omitempty"`
	AffectsPath    string           `json:"affects-path,omitempty"`
	Runs           int              `json:"runs"`
	LastRun        *time.Time       `json:"last-run"`
	LastError      string           `json:"last-error,omitempty"`
	Report         *linktest.Report `json:"report"` // the last test that ran
	// HoldsDown is true while the last loss exceeded max-loss and the
	// test holds AffectsPath down; Reason says by how much.
	HoldsDown bool   `json:"holds-path-down"`
	Reason    string `json:"reason,omitempty"`
}

// MaxOnDemand bounds how long POST /v1/linktest may run.
const MaxOnDemand = 2 * time.Minute

// Routes adds POST /v1/linktest and GET /v1/linktests to srv.
func (s *Scheduler) Routes(srv *api.Server) {
	srv.Handle("POST /v1/linktest", s.handleRun)
	srv.Handle("GET /v1/linktests", s.handleList)
}

func (s *Scheduler) handleRun(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := api.ReadJSON(r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	o, err := req.Options()
	if err != nil {
		api.WriteError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), MaxOnDemand)
	defer cancel()
	rep, err := s.RunTest(ctx, o)
	if err != nil {
		// Run's errors are tests that could not run: bad options (an odd
		// TTL, a size over the MTU) or this host not set up to loop the
		// probes; each says what to change.
		api.WriteError(w, fmt.Errorf("%w: link test not run: %v", api.ErrBadRequest, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, rep)
}

func (s *Scheduler) handleList(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.Status())
}
