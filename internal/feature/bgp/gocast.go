package bgp

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/reachd/reachd/internal/apitype"
)

// The gocast-compatible API (GET /register, /unregister, /info): an
// orchestrator moving from gocast changes only the URL's host. What gocast
// lacks is kept: rise/fall on every check, the TCP check really connects,
// and registrations survive a restart (state-dir/bgp.json).

// register turns a registration into an announcement through the
// daemon's validation (the config's rules and defaults).
func (f *Feature) register(r registration) (Announce, error) {
	if f.opts.Register == nil {
		return Announce{}, fmt.Errorf("%w: registrations are not available", ErrBadRequest)
	}
	a, err := f.opts.Register(r.Name, r.VIP, r.Monitors, r.Communities)
	if err != nil {
		return a, err
	}
	a.Source = "register"
	return a, nil
}

// Register adds or replaces a registration (GET /register).
func (f *Feature) Register(ctx context.Context, name, vip string, monitors, communities []string) (apitype.Announcement, error) {
	var out apitype.Announcement
	var err error
	derr := f.do(ctx, func() {
		if f.sp == nil {
			err = fmt.Errorf("%w: bgp is not configured; add a bgp: section", ErrBadRequest)
			return
		}
		if slices.ContainsFunc(f.cfg.Announce, func(a Announce) bool { return a.Name == name }) {
			err = fmt.Errorf("%w: %q is an announcement of the config file; pick another name", ErrBadRequest, name)
			return
		}
		r := registration{Name: name, VIP: vip, Monitors: monitors, Communities: communities}
		a, e2 := f.register(r)
		if e2 != nil {
			err = e2
			return
		}
		i := slices.IndexFunc(f.st.Registrations, func(x registration) bool { return x.Name == name })
		if i >= 0 && slices.Equal(f.st.Registrations[i].Monitors, monitors) && f.st.Registrations[i].VIP == vip &&
			slices.Equal(f.st.Registrations[i].Communities, communities) {
			out = f.view(f.entries[name])
			return
		}
		if old, ok := f.entries[name]; ok {
			f.removeEntry(old, "registration replaced")
		}
		if i >= 0 {
			f.st.Registrations[i] = r
		} else {
			f.st.Registrations = append(f.st.Registrations, r)
		}
		e := f.newEntry(a)
		f.entries[name] = e
		f.log.Info("registered", "name", name, "vip", a.Prefix, "monitors", strings.Join(monitors, ","))
		f.startChecks(f.runCtx, e)
		f.m.setEntry(e)
		f.save()
		out = f.view(e)
	})
	if derr != nil {
		return out, derr
	}
	return out, err
}

// Unregister withdraws and forgets a registration (GET /unregister).
func (f *Feature) Unregister(ctx context.Context, name string) error {
	var err error
	derr := f.do(ctx, func() {
		i := slices.IndexFunc(f.st.Registrations, func(x registration) bool { return x.Name == name })
		if i < 0 {
			err = fmt.Errorf("%w: no registration is named %q", ErrNotFound, name)
			return
		}
		f.st.Registrations = slices.Delete(f.st.Registrations, i, i+1)
		if e, ok := f.entries[name]; ok {
			f.removeEntry(e, "unregistered")
		}
		f.log.Info("unregistered", "name", name)
		f.save()
	})
	if derr != nil {
		return derr
	}
	return err
}

// Info is GET /info: the sessions and the registered apps.
func (f *Feature) Info(ctx context.Context) (apitype.GocastInfo, error) {
	peers, err := f.Neighbors(ctx)
	if err != nil {
		return apitype.GocastInfo{}, err
	}
	out := apitype.GocastInfo{Peers: peers, Apps: []apitype.GocastApp{}}
	err = f.do(ctx, func() {
		for _, r := range f.st.Registrations {
			app := apitype.GocastApp{Name: r.Name, VIP: r.VIP, Monitors: r.Monitors, Health: "unknown"}
			if e, ok := f.entries[r.Name]; ok {
				app.Health, app.Announced = e.tr.State().String(), e.cur != nil
			}
			out.Apps = append(out.Apps, app)
		}
	})
	return out, err
}
