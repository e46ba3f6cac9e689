package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

func report(outs []*outcome) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	host, _ := os.Hostname()
	load, _ := os.ReadFile("/proc/loadavg")
	w("### Fleet run of %s\n\n", outs[0].started.UTC().Format("2006-01-02 15:04 UTC"))
	w("Command: `go run ./bench/cmd/fleet %s`; host %s, %d CPUs, %s; load average at the end %s\n\n",
		strings.Join(os.Args[1:], " "), host, runtime.NumCPU(), runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
	for _, o := range outs {
		c := o.cfg
		w("#### %s: %d managers × %d flows, ping every %v, fail-delay %v; peers up %v–%v, down %v–%v; %v with %d broker restart(s) of %v; %d brokers, %d partitions; spool bound %d per manager\n\n",
			c.name, c.managers, c.flows, c.interval, c.failDelay, c.flap.upMin, c.flap.upMax, c.flap.downMin, c.flap.downMax,
			c.duration, c.restarts, c.outage, c.brokers, c.partitions, c.maxSpooled)
		v := o.verdict
		w("| reports | |\n|---|---:|\n")
		w("| spooled by the flows (sent) | %d |\n", v.Sent)
		w("| acknowledged by the brokers (producers' count) | %d |\n", o.produced)
		w("| records read back | %d |\n", v.Records)
		w("| distinct reports read back | %d |\n", v.Delivered)
		w("| duplicates (of which after a later report) | %d (%d) |\n", v.Duplicates, v.StaleDuplicates)
		w("| lost | %d |\n", v.Lost)
		w("| dropped, counted by the producers | %d |\n", o.dropped)
		w("| out of order / unknown / flows split over partitions | %d / %d / %d |\n", v.OutOfOrder, v.Unknown, v.SplitFlows)
		w("| failed produce attempts (retried from the spool) | %d |\n", o.failures)
		w("\n")
		w("| spool | |\n|---|---:|\n")
		w("| bound per manager | %d reports |\n", c.maxSpooled)
		w("| most in one spool (producer's count / files on disk) | %d / %d |\n", o.maxSpooled, o.maxFiles)
		w("| hand-off of a report to the producer (Enqueue), which the flow waits for: p50 / p99 / max | %.3f / %.3f / %.1f ms |\n", 1000*o.sendP50, 1000*o.sendP99, 1000*o.sendMax)
		w("| most bytes in one spool directory | %d |\n", o.maxBytes)
		w("| most reports in all spools and queues at once / bytes in all spools | %d / %d |\n", o.maxSpooledTotal, o.maxTotalBytes)
		w("\n")
		if len(o.outages) > 0 {
			w("| restart | down (of which kfake stopping / starting) | spooled when back | failed attempts while down | half the spools / every spool empty once after |\n|---|---:|---:|---:|---:|\n")
			for i, r := range o.outages {
				d := "not before the next restart"
				switch {
				case r.AtEnd:
					d = "at the end of the run, " + r.Drain.Round(10*time.Millisecond).String() + " after"
				case r.Drained:
					d = r.DrainP50.Round(10*time.Millisecond).String() + " / " + r.Drain.Round(10*time.Millisecond).String()
				}
				w("| %d | %v (%v / %v) | %d | %d | %s |\n", i+1, r.Up.Sub(r.Down).Round(10*time.Millisecond),
					r.Stopping.Round(10*time.Millisecond), r.Starting.Round(10*time.Millisecond), r.SpooledAtUp, r.FailuresDown, d)
			}
			w("\nAfter the flapping stopped (every peer up), every flow was operational again after %v and every spool and queue empty after %v.\n\n",
				o.operationalEnd.Round(10*time.Millisecond), o.finalDrain.Round(10*time.Millisecond))
		}
		w("| process (the whole fleet, its peers and the cluster) | |\n|---|---:|\n")
		w("| CPU over the flapping and restarts | %.1f s in %.0f s = %.0f %% of a core |\n", o.cpu.Seconds(), o.measured.Seconds(), 100*o.cpu.Seconds()/o.measured.Seconds())
		w("| pings per second (all flows) | %.0f |\n", o.pings)
		w("| RSS max (sampled) / VmHWM | %.0f / %.0f MiB |\n", float64(o.rssMaxKB)/1024, float64(o.hwmKB)/1024)
		w("| Go heap / stacks in use at the end, after a GC | %.0f / %.0f MiB |\n", float64(o.heapKB)/1024, float64(o.stackKB)/1024)
		w("| fds max / threads max | %d / %d |\n", o.fdsMax, o.threadsMax)
		w("| the fleet's goroutines (managers, senders, producers, Kafka clients), every peer up and the spools empty: before the restarts / after (%v later) | %d / %d |\n", o.gorSettle.Round(time.Second), o.gorWarm.Fleet, o.gorEnd.Fleet)
		w("| the process's goroutines (with the peers' and kfake's) during the flapping and restarts, min–max | %d–%d |\n", o.gorMin, o.gorMax)
		w("| kfake's goroutines before / after the restarts (3 per client connection) | %d / %d |\n", o.gorWarm.Cluster, o.gorEnd.Cluster)
		w("| goroutines of the process before the fleet / after it stopped | %d / %d |\n", o.gorBaseline, o.gorAfter)
		w("| wall time of the run | %v |\n", o.wall.Round(time.Second))
		w("\n")
		if len(o.errs) == 0 {
			if c.dropCase {
				w("Checks: met. Reports lost %d ≤ drops counted %d, per manager; none out of order; spools within their bound; goroutines flat.\n\n", v.Lost, o.dropped)
			} else {
				w("Checks: met. Every report arrived, in order per flow; spools within their bound; goroutines flat.\n\n")
			}
		} else {
			w("Checks: FAILED:\n\n")
			for _, e := range o.errs {
				w("- %s\n", e)
			}
			w("\n")
		}
	}
	return b.String()
}
