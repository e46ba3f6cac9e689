package daemon

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/reachd/reachd/internal/config"
	"github.com/reachd/reachd/internal/sdnotify"
)

// notifyReady tells systemd READY=1 once the engine's loop answers (the
// API already listens, the data plane is set up and the features run:
// Run starts this last), then feeds the watchdog until ctx ends.
func (d *Daemon) notifyReady(ctx context.Context) {
	if err := d.eng.Ping(ctx); err != nil {
		return
	}
	d.reloadMu.Lock()
	status := statusLine(d.cfg)
	d.reloadMu.Unlock()
	releaseStartGarbage()
	if err := d.notify.Send("READY=1\nSTATUS=" + status); err != nil {
		d.log.Warn("telling systemd we are ready", "err", err)
	}
	d.watchdog(ctx)
}

// watchdog sends WATCHDOG=1 every half watchdog interval, but only after
// the engine's own goroutine answered a ping in that time: a wedged engine
// stops the pings and systemd restarts reachd (WatchdogSec=, Restart=); a
// busy one still answers between batches of results.
func (d *Daemon) watchdog(ctx context.Context) {
	iv := d.notify.Watchdog()
	if iv <= 0 {
		return
	}
	half := iv / 2
	d.log.Info("systemd watchdog enabled", "interval", iv)
	t := time.NewTicker(half)
	defer t.Stop()
	late := false
	for {
		pctx, cancel := context.WithTimeout(ctx, half)
		err := d.eng.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !late {
				d.log.Error("the engine did not answer within half the watchdog interval; not feeding the watchdog", "wait", half)
			}
			late = true
		default:
			if late {
				d.log.Warn("the engine answers again; feeding the watchdog")
			}
			late = false
			d.notify.Send("WATCHDOG=1")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// statusLine is what `systemctl status reachd` shows.
func statusLine(cfg *config.Config) string {
	return fmt.Sprintf("%d services, API on %s", len(cfg.Services), cfg.API.Socket)
}

// notifier is the systemd notifier of the options, or $NOTIFY_SOCKET's.
func notifier(o Options) *sdnotify.Notifier {
	if o.Notifier != nil {
		return o.Notifier
	}
	return sdnotify.FromEnv()
}

// releaseStartGarbage returns to the kernel, once, the heap that reading the
// config and building the paths left behind (several MiB for 10,000 targets:
// the YAML parser's tokens and nodes). The runtime's scavenger would give it
// back only slowly, and meanwhile it counts in the daemon's RSS
// (BENCHMARKS.md, "Memory"). One forced collection costs a few milliseconds.
func releaseStartGarbage() { debug.FreeOSMemory() }
