package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/reachd/reachd/internal/atomicfile"
	"github.com/reachd/reachd/internal/config"
)

// ECMP services (selection: ecmp) have two things hunt services do not:
// drained paths (no new connections, existing ones stay) and next-hops
// that other features add at run time (dynamic next-hops, e.g. learned
// from BGP announcements). Both reach the engine as messages to its
// goroutine, like overrides.
//
// For other features (the BGP speaker): hold the *Engine and call
//
//	e.AddNextHop(ctx, "anycast", engine.NextHop{Name: "bgp-192.0.2.66", Interface: "s1", Gateway: gw, Weight: 1})
//	e.SetDrain(ctx, "anycast", "bgp-192.0.2.66", true)   // graceful: no new connections
//	e.RemoveNextHop(ctx, "anycast", "bgp-192.0.2.66")    // gone: its connections are flushed
//
// A dynamic next-hop is up from the moment it is added (the announcement
// is its health signal); SetExternal can still hold it down. It needs no
// probe and no config entry, but the service must exist in the config with
// selection: ecmp. Each call returns when the decision has reached the
// data plane. Dynamic next-hops live in memory: after a restart the feeder
// adds them again (the kernel keeps their rules, tables and pinned
// connections meanwhile, see internal/dataplane).

// NextHop is a next-hop added to an ecmp service at run time.
type NextHop struct {
	// Name is the path name, unique in the service (it shows in status,
	// path-info and drain commands), e.g. "bgp-192.0.2.66".
	Name      string
	Interface string
	Gateway   netip.Addr
	// Weight is the share of new connections; 0 means 1.
	Weight int
}

// ErrNotECMP is returned when an ecmp-only operation names a hunt service.
var ErrNotECMP = fmt.Errorf("%w: the service is not selection: ecmp", ErrBadRequest)

// AddNextHop adds a dynamic next-hop to an ecmp service, or updates the
// gateway, interface or weight of one added before. New connections reach
// it at once; no existing connection moves.
func (e *Engine) AddNextHop(ctx context.Context, service string, nh NextHop) error {
	if nh.Name == "" || !nh.Gateway.IsValid() || nh.Interface == "" {
		return fmt.Errorf("%w: a next-hop needs a name, an interface and a gateway", ErrBadRequest)
	}
	if nh.Weight == 0 {
		nh.Weight = 1
	}
	if nh.Weight < 0 || nh.Weight > config.MaxWeight {
		return fmt.Errorf("%w: weight %d must be between 1 and %d", ErrBadRequest, nh.Weight, config.MaxWeight)
	}
	var err error
	derr := e.do(ctx, func() {
		sc := e.fileService(service)
		if sc == nil {
			err = fmt.Errorf("service %q: %w", service, ErrNotFound)
			return
		}
		if !sc.ECMP() {
			err = ErrNotECMP
			return
		}
		for _, p := range sc.Paths {
			if p.Name == nh.Name {
				err = fmt.Errorf("%w: %q is a configured path of %q", ErrBadRequest, nh.Name, service)
				return
			}
		}
		for _, pr := range sc.Prefixes {
			if pr.Addr().Is4() != nh.Gateway.Is4() {
				err = fmt.Errorf("%w: gateway %v cannot route %v (another address family)", ErrBadRequest, nh.Gateway, pr)
				return
			}
		}
		p := config.Path{
			Name: nh.Name, Interface: nh.Interface, Gateway: nh.Gateway.String(), GatewayAddr: nh.Gateway,
			Weight: nh.Weight, Dynamic: true, Reliability: 1, FlushOnDown: true,
		}
		list := e.dynamic[service]
		i := slices.IndexFunc(list, func(q config.Path) bool { return q.Name == nh.Name })
		if i >= 0 && reflect.DeepEqual(list[i], p) {
			return
		}
		if i >= 0 {
			list[i] = p
		} else {
			list = append(list, p)
		}
		e.dynamic[service] = list
		e.log.Info("next-hop added", "service", service, "path", nh.Name, "via", nh.Gateway, "dev", nh.Interface, "weight", nh.Weight)
		err = e.apply(e.cfg)
	})
	if derr != nil {
		return derr
	}
	return err
}

// RemoveNextHop removes a dynamic next-hop: it takes no new connections
// and its pinned connections are flushed (the next-hop is gone, so they
// could not be served; their clients learn at once). Drain first for a
// graceful removal; the drain ends with the next-hop. Removing an unknown
// next-hop is not an error.
func (e *Engine) RemoveNextHop(ctx context.Context, service, name string) error {
	var err error
	derr := e.do(ctx, func() {
		list := e.dynamic[service]
		i := slices.IndexFunc(list, func(q config.Path) bool { return q.Name == name })
		if i < 0 {
			return
		}
		e.dynamic[service] = slices.Delete(list, i, i+1)
		e.log.Info("next-hop removed", "service", service, "path", name)
		if e.drains[pathKey{service, name}] {
			delete(e.drains, pathKey{service, name})
			if e.opts.Drains != nil {
				if serr := e.opts.Drains.save(e.drains); serr != nil {
					e.log.Error("persisting drains", "err", serr)
				}
			}
		}
		err = e.apply(e.cfg)
	})
	if derr != nil {
		return derr
	}
	return err
}

// SetDrain drains (true) or undrains a path of an ecmp service: a drained
// path gets no new connections, its pinned ones keep working until they
// end or go idle. Drains of configured paths survive a restart.
func (e *Engine) SetDrain(ctx context.Context, service, pathName string, drained bool) error {
	var err error
	derr := e.do(ctx, func() {
		p := e.findPath(service, pathName)
		if p == nil {
			err = fmt.Errorf("service %q path %q: %w", service, pathName, ErrNotFound)
			return
		}
		if !p.svc.cfg.ECMP() {
			err = ErrNotECMP
			return
		}
		k := pathKey{service, pathName}
		if e.drains[k] == drained {
			return
		}
		if drained {
			e.drains[k] = true
		} else {
			delete(e.drains, k)
		}
		e.log.Info("path drain", "service", service, "path", pathName, "drained", drained)
		if e.opts.Drains != nil {
			if serr := e.opts.Drains.save(e.drains); serr != nil {
				e.log.Error("persisting drains", "err", serr)
			}
		}
		e.decide(p.svc)
	})
	if derr != nil {
		return derr
	}
	return err
}

// fileService is the service as the config file has it (no dynamic paths).
func (e *Engine) fileService(name string) *config.Service {
	for i := range e.cfg.Services {
		if e.cfg.Services[i].Name == name {
			return &e.cfg.Services[i]
		}
	}
	return nil
}

// effective returns sc with the dynamic next-hops of the service appended;
// sc itself when it has none (the config stays shared and unchanged).
func (e *Engine) effective(sc *config.Service) *config.Service {
	dyn := e.dynamic[sc.Name]
	if len(dyn) == 0 || !sc.ECMP() {
		return sc
	}
	eff := *sc
	eff.Paths = append(slices.Clip(slices.Clone(sc.Paths)), dyn...)
	return &eff
}

// DrainStore keeps drained paths in state-dir/drains.json.
type DrainStore struct{ file string }

// NewDrainStore stores drains under dir.
func NewDrainStore(dir string) *DrainStore {
	return &DrainStore{file: filepath.Join(dir, "drains.json")}
}

// Load returns the stored drains; a missing or unreadable file is empty.
func (s *DrainStore) Load() map[pathKey]bool {
	out := map[pathKey]bool{}
	data, err := os.ReadFile(s.file)
	if err != nil {
		return out
	}
	var list []string
	if json.Unmarshal(data, &list) != nil {
		return out
	}
	for _, k := range list {
		if svc, p, ok := strings.Cut(k, "/"); ok {
			out[pathKey{svc, p}] = true
		}
	}
	return out
}

func (s *DrainStore) save(m map[pathKey]bool) error {
	list := []string{}
	for k := range m {
		list = append(list, k.service+"/"+k.path)
	}
	sort.Strings(list)
	data, _ := json.MarshalIndent(list, "", "  ")
	if err := atomicfile.WriteFile(s.file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving drains: %w", err)
	}
	return nil
}
