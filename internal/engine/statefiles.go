package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// stateFile is what was last seen of one {service}-{path}.state file.
type stateFile struct {
	mod    time.Time
	size   int64
	status string
}

// WatchStateFiles polls dir for the seed's per-path state files
// ({service}-{path}.state holding STATUS=down|up) every interval until ctx
// ends. A new or changed file forces the path's status; STATUS=auto or
// removing the file sets it back to auto. Polling (not inotify) because
// operators edit these files with echo >> and editors that replace them.
func (e *Engine) WatchStateFiles(ctx context.Context, dir string, interval time.Duration) {
	seen := map[string]stateFile{}
	// A timer armed after each scan (not a ticker), so that a test on a
	// fake clock knows a scan has finished when the timer is pending again.
	timer := e.clk.NewTimer(interval)
	defer timer.Stop()
	for {
		e.scanStateFiles(ctx, dir, seen)
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		}
	}
}

func (e *Engine) scanStateFiles(ctx context.Context, dir string, seen map[string]stateFile) {
	names, _ := filepath.Glob(filepath.Join(dir, "*.state"))
	present := map[string]bool{}
	for _, name := range names {
		present[name] = true
		st, err := os.Stat(name)
		if err != nil {
			continue
		}
		old, known := seen[name]
		if known && st.ModTime().Equal(old.mod) && st.Size() == old.size {
			continue
		}
		status, found, err := readStateFile(name)
		if err != nil {
			e.log.Warn("reading state file", "file", name, "err", err)
			continue
		}
		seen[name] = stateFile{mod: st.ModTime(), size: st.Size(), status: status}
		if !found || (known && old.status == status) {
			continue
		}
		e.applyStateFile(ctx, name, status)
	}
	for name, old := range seen {
		if !present[name] {
			delete(seen, name)
			if old.status != "" {
				e.applyStateFile(ctx, name, "auto")
			}
		}
	}
}

func (e *Engine) applyStateFile(ctx context.Context, name, status string) {
	o, err := ParseOverride(status)
	if err != nil {
		e.log.Warn("state file: STATUS must be up, down or auto", "file", name, "status", status)
		return
	}
	generated := strings.TrimSuffix(filepath.Base(name), ".state")
	_ = e.do(ctx, func() {
		svc, p, ok := e.resolveName(generated)
		if !ok {
			e.log.Warn("state file names no configured {service}-{path}", "file", name)
			return
		}
		if err := e.setOverride(svc, p, o, "state file "+name); err != nil {
			e.log.Warn("state file", "file", name, "err", err)
		}
	})
}

// PingStatus applies a status update in the form of the seed's path-change
// notifier (POST /ping-status): the generated name {service}-{path} (or
// service and path) and up, down or auto. It acts as a forced status.
func (e *Engine) PingStatus(ctx context.Context, name, service, pathName, status string) (string, error) {
	o, err := ParseOverride(status)
	if err != nil {
		return "", err
	}
	var serr error
	svcOut := service
	derr := e.do(ctx, func() {
		if name != "" {
			s, p, ok := e.resolveName(name)
			if !ok {
				serr = ErrNotFound
				return
			}
			service, pathName, svcOut = s, p, s
		}
		serr = e.setOverride(service, pathName, o, "ping-status")
	})
	if derr != nil {
		return "", derr
	}
	return svcOut, serr
}
