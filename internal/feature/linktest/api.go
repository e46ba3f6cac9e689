package linktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/reachd/reachd/internal/api/httpjson"
	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/feature"
	"github.com/reachd/reachd/internal/linkplan"
	"github.com/reachd/reachd/internal/probe/ttlloop"
)

// RequestOptions converts an on-demand request; errors wrap
// httpjson.ErrBadRequest.
func RequestOptions(r apitype.LinktestRequest) (ttlloop.Options, error) {
	o := ttlloop.Options{Interface: r.Interface, TTL: r.TTL, AllowOddTTL: r.AllowOddTTL, Count: r.Count, Size: r.Size, Mark: r.Mark}
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
		v, err := linkplan.ParseDuration(d.s)
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
			w, err := linkplan.ParseDuration(r.LoadWindow)
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
		return o, fmt.Errorf("%w: %v", httpjson.ErrBadRequest, err)
	}
	return o, nil
}

// MaxOnDemand bounds how long POST /v1/linktest may run.
const MaxOnDemand = apitype.MaxLinktestDuration

// Routes adds POST /v1/linktest and GET /v1/linktests to srv.
func (s *Scheduler) Routes(srv feature.Router) {
	srv.Handle("POST /v1/linktest", s.handleRun)
	srv.Handle("GET /v1/linktests", s.handleList)
}

func (s *Scheduler) handleRun(w http.ResponseWriter, r *http.Request) {
	var req apitype.LinktestRequest
	if err := httpjson.ReadJSON(r, &req); err != nil {
		httpjson.WriteError(w, err)
		return
	}
	o, err := RequestOptions(req)
	if err != nil {
		httpjson.WriteError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), MaxOnDemand)
	defer cancel()
	rep, err := s.RunTest(ctx, o)
	if err != nil {
		// Run's errors are tests that could not run: bad options (an odd
		// TTL, a size over the MTU) or this host not set up to loop the
		// probes; each says what to change.
		httpjson.WriteError(w, fmt.Errorf("%w: link test not run: %v", httpjson.ErrBadRequest, err))
		return
	}
	httpjson.WriteJSON(w, http.StatusOK, ReportJSON(rep))
}

func (s *Scheduler) handleList(w http.ResponseWriter, r *http.Request) {
	httpjson.WriteJSON(w, http.StatusOK, s.Status())
}

// ReportJSON is a report in the API's shape. The two types have the same
// JSON by construction (apitype's mirrors the prober's, which has no
// knowledge of the API); TestReportJSONHasEveryField keeps them so.
func ReportJSON(r ttlloop.Report) apitype.LinktestReport {
	var out apitype.LinktestReport
	b, err := json.Marshal(r)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		// Only reachable if the types stop being JSON-compatible; the
		// test catches that before a build ships.
		panic(fmt.Sprintf("linktests: report does not convert to the API's shape: %v", err))
	}
	return out
}
