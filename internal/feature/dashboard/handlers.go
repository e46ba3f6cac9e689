package dashboard

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/events"
	"github.com/reachd/reachd/internal/history"
	"github.com/reachd/reachd/internal/policy"
)

//go:embed assets
var assetsFS embed.FS

func (d *Dashboard) routes() *http.ServeMux {
	m := http.NewServeMux()
	sub, _ := fs.Sub(assetsFS, "assets")
	files := http.FileServerFS(sub)
	m.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	m.HandleFunc("GET /api/overview", d.handleOverview)
	m.HandleFunc("GET /api/events", d.handleEvents)
	m.HandleFunc("GET /api/history", d.handleHistory)
	m.HandleFunc("GET /api/chart.svg", d.handleChart)
	m.HandleFunc("GET /api/stream", d.handleStream)
	m.HandleFunc("POST /api/actions/", func(w http.ResponseWriter, r *http.Request) {
		h := d.actionHandler()
		if h == nil {
			writeJSON(w, http.StatusForbidden, apitype.Error{Error: "the dashboard is read-only: no API token is configured (api.token-file)"})
			return
		}
		h.ServeHTTP(w, r)
	})
	return m
}

// actionMux holds the state-changing endpoints; the guard (credential
// check and audit log) wraps it.
func (d *Dashboard) actionMux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/actions/override", d.handleOverride)
	m.HandleFunc("POST /api/actions/bypass", d.handleBypass)
	m.HandleFunc("POST /api/actions/drain", d.handleDrain)
	return m
}

func (d *Dashboard) handleDrain(w http.ResponseWriter, r *http.Request) {
	var req apitype.DashActionRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Status != "drain" && req.Status != "undrain" {
		writeError(w, fmt.Errorf("%w: status %q must be drain or undrain", errBadRequest, req.Status))
		return
	}
	if d.opts.Sources.SetDrain == nil {
		writeError(w, errors.New("drains are not available"))
		return
	}
	if err := d.opts.Sources.SetDrain(r.Context(), req.Service, req.Path, req.Status == "drain"); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "path " + req.Service + "/" + req.Path + " " + req.Status + "ed"})
}

func (d *Dashboard) handleOverview(w http.ResponseWriter, r *http.Request) {
	ov, err := d.overview(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ov)
}

func (d *Dashboard) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := 100
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			writeError(w, fmt.Errorf("%w: n=%q must be a positive number", errBadRequest, s))
			return
		}
		n = v
	}
	evs := d.opts.Feed.Recent(n, events.Filter{Kinds: q.Get("kind"), Service: q.Get("service"), Text: q.Get("q")})
	writeJSON(w, http.StatusOK, evs)
}

// Ranges the page offers; any from/to between 1 minute and 34 days works.
var ranges = map[string]time.Duration{
	"1h": time.Hour, "3h": 3 * time.Hour, "12h": 12 * time.Hour, "1d": 24 * time.Hour,
	"2d": 48 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour,
}

// timeRange reads range=3h, or from and to in Unix milliseconds.
func (d *Dashboard) timeRange(r *http.Request) (now, from, to time.Time, err error) {
	q := r.URL.Query()
	now = d.now()
	to = now
	if f, t := q.Get("from"), q.Get("to"); f != "" || t != "" {
		fi, err1 := strconv.ParseInt(f, 10, 64)
		ti, err2 := strconv.ParseInt(t, 10, 64)
		if err1 != nil || err2 != nil || ti-fi < 60_000 || ti-fi > 34*24*3600_000 {
			return now, from, to, fmt.Errorf("%w: from and to are Unix milliseconds, at least a minute and at most 34 days apart", errBadRequest)
		}
		return now, time.UnixMilli(fi), time.UnixMilli(ti), nil
	}
	rs := q.Get("range")
	if rs == "" {
		rs = "3h"
	}
	dur, ok := ranges[rs]
	if !ok {
		return now, from, to, fmt.Errorf("%w: range=%q; use 1h, 3h, 12h, 1d, 2d, 7d or 30d", errBadRequest, rs)
	}
	return now, now.Add(-dur), now, nil
}

func (d *Dashboard) view(r *http.Request) (string, time.Time, time.Time, history.View, error) {
	key := r.URL.Query().Get("series")
	now, from, to, err := d.timeRange(r)
	if err != nil {
		return key, from, to, history.View{}, err
	}
	v, ok := d.opts.Store.Query(key, now, from, to)
	if !ok {
		if key == "" {
			return key, from, to, v, fmt.Errorf("%w: give series=KEY (the overview lists them)", errBadRequest)
		}
		// A series that has no data yet is empty, not missing.
		v.Step = history.DefaultLevels[0].Step
	}
	return key, from, to, v, nil
}

func (d *Dashboard) handleHistory(w http.ResponseWriter, r *http.Request) {
	key, from, to, v, err := d.view(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := apitype.DashHistory{Series: key, From: from.UTC(), To: to.UTC(), StepS: int(v.Step / time.Second),
		Points: []apitype.DashPoint{}, Marks: []apitype.DashMark{}}
	for _, b := range v.Points {
		p := apitype.DashPoint{T: b.Start(v.Step).UTC(), Sent: b.Sent, Lost: b.Lost, Q: make([]*float64, history.NQ)}
		for i, q := range b.Q {
			if !math.IsNaN(float64(q)) {
				f := math.Round(float64(q)*1000) / 1000
				p.Q[i] = &f
			}
		}
		out.Points = append(out.Points, p)
	}
	for _, m := range v.Marks {
		out.Marks = append(out.Marks, apitype.DashMark{T: time.UnixMilli(m.At).UTC(), State: m.State})
	}
	if v.Before != nil {
		out.Start = &apitype.DashMark{T: time.UnixMilli(v.Before.At).UTC(), State: v.Before.State}
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dashboard) handleChart(w http.ResponseWriter, r *http.Request) {
	key, from, to, v, err := d.view(r)
	if err != nil {
		writeError(w, err)
		return
	}
	width, height := 800, 220
	if s := r.URL.Query().Get("w"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			width = min(max(n, 280), 2400)
		}
	}
	if s := r.URL.Query().Get("h"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			height = min(max(n, 120), 800)
		}
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	renderChart(w, chartSpec{Title: key, From: from, To: to, Width: width, Height: height, View: v, Loc: time.Local})
}

func (d *Dashboard) handleOverride(w http.ResponseWriter, r *http.Request) {
	var req apitype.DashActionRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var o policy.Override
	switch req.Status {
	case "up":
		o = policy.ForceUp
	case "down":
		o = policy.ForceDown
	case "auto":
		o = policy.Auto
	default:
		writeError(w, fmt.Errorf("%w: status %q must be up, down or auto", errBadRequest, req.Status))
		return
	}
	if d.opts.Sources.SetOverride == nil {
		writeError(w, errors.New("overrides are not available"))
		return
	}
	if err := d.opts.Sources.SetOverride(r.Context(), req.Service, req.Path, o); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "path " + req.Service + "/" + req.Path + " " + o.String()})
}

func (d *Dashboard) handleBypass(w http.ResponseWriter, r *http.Request) {
	var req apitype.DashActionRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if d.opts.Sources.SetBypass == nil {
		writeError(w, errors.New("bypass is not available"))
		return
	}
	if err := d.opts.Sources.SetBypass(r.Context(), req.Group, req.Status); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "group " + req.Group + " " + req.Status})
}

// handleStream is the live feed (server-sent events): "overview" with the
// whole overview when something changed (and every few seconds), "event"
// with each new event.
func (d *Dashboard) handleStream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	ovs, last := d.hub.subscribe()
	defer d.hub.unsubscribe(ovs)
	evs := d.opts.Feed.Subscribe(64)
	defer d.opts.Feed.Unsubscribe(evs)
	if last == nil {
		ov, err := d.overview(r.Context())
		if err == nil {
			last, _ = jsonMarshal(ov)
		}
	}
	w.Write([]byte("retry: 1000\n\n"))
	if last != nil {
		writeSSE(w, "overview", last)
	}
	fl.Flush()
	keep := d.clk.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-ovs:
			writeSSE(w, "overview", b)
		case e := <-evs.C:
			b, _ := jsonMarshal(e)
			writeSSE(w, "event", b)
		case <-keep.C():
			w.Write([]byte(": keep-alive\n\n"))
		}
		fl.Flush()
	}
}

func writeSSE(w http.ResponseWriter, name string, data []byte) {
	w.Write([]byte("event: " + name + "\ndata: "))
	w.Write(data)
	w.Write([]byte("\n\n"))
}
