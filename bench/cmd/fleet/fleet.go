package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reachd/reachd/bench/internal/daemonrun"
	"github.com/reachd/reachd/internal/feature/flow"
)

// config is one fleet run.
type config struct {
	name       string
	managers   int
	flows      int // per manager, each with its own peer
	interval   time.Duration
	failDelay  time.Duration
	timeout    time.Duration
	flap       flapping
	duration   time.Duration // of the flapping, outages included
	restarts   int
	outage     time.Duration
	brokers    int
	partitions int32
	maxSpooled int
	spoolRoot  string // "" = a temporary directory
	dumpDir    string // write goroutine and heap profiles here at the end of the run
	// dropCase expects the spools to overflow: losses are then allowed,
	// as long as each member counted at least as many drops.
	dropCase bool
}

// outage is one broker restart.
type outage struct {
	Down, Up           time.Time
	Stopping, Starting time.Duration // kfake's Close (it persists) and NewCluster (it loads)
	SpooledAtUp        int           // reports waiting in all spools when the brokers came back
	Drain              time.Duration // from Up until every spool had been empty once
	DrainP50           time.Duration // half the spools had been empty once
	Drained            bool
	AtEnd              bool   // drained only at the end of the run (Drain counts up to then)
	FailuresDown       uint64 // failed produce attempts while down
}

// outcome is what a run measured.
type outcome struct {
	cfg     config
	started time.Time
	wall    time.Duration
	errs    []string // setup or assertion failures

	ledgerBad []string
	verdict   verdict

	produced, dropped, failures, damaged uint64
	droppedBy                            map[int]uint64 // member → drops
	lostBy                               map[int]int    // member → reports lost

	maxSpooled      int   // most reports in one producer's spool (Stats)
	maxSpooledTotal int   // most in all spools at once
	maxFiles        int   // most *.json files in one spool directory
	maxBytes        int64 // most bytes in one spool directory
	maxTotalBytes   int64

	outages    []outage
	finalDrain time.Duration
	// operationalEnd: from the end of the flapping until every flow was
	// operational again.
	operationalEnd time.Duration
	gorSettle      time.Duration // how long the fleet's goroutines took to come back after the run
	drainedEnd     bool

	cpu                       time.Duration // user+sys over the measured part
	measured                  time.Duration // wall time of the measured part
	rssMaxKB, hwmKB           int64
	heapKB, stackKB           int64 // in use after a GC at the end (all peers up, spools empty)
	fdsMax, threadsMax        int
	gorWarm, gorEnd           gcount // all peers up, every flow operational, spools empty
	gorBaseline, gorAfter     int    // the process's, before the fleet started and after it stopped
	gorMin, gorMax            int    // the process's, sampled every second during the flapping
	pings                     float64
	sendP50, sendP99, sendMax float64 // seconds a flow's OnEvent waited in Send (spool write + fsyncs)
}

func (o *outcome) fail(format string, a ...any) {
	o.errs = append(o.errs, fmt.Sprintf(format, a...))
}

// waitUntil polls cond every 20 ms until it holds or d passed.
func waitUntil(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runFleet(cfg config, logf func(string, ...any)) *outcome {
	o := &outcome{cfg: cfg, started: time.Now(), droppedBy: map[int]uint64{}, lostBy: map[int]int{}}
	defer func() { o.wall = time.Since(o.started) }()
	o.gorBaseline = runtime.NumGoroutine()

	root := cfg.spoolRoot
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "reachd-fleet-"); err != nil {
			o.fail("%v", err)
			return o
		}
		defer os.RemoveAll(root)
	}
	topic := "kilda.flow.status"
	b := &broker{dir: filepath.Join(root, "kfake"), n: cfg.brokers, topic: topic, partitions: cfg.partitions}
	if err := b.start(); err != nil {
		o.fail("%v", err)
		return o
	}
	defer b.stop()

	peers := make([]*peer, cfg.managers*cfg.flows)
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.down()
			}
		}
	}()
	for k := range peers {
		peers[k] = &peer{addr: netip.AddrPortFrom(peerAddr(k), 0)}
		if err := peers[k].up(); err != nil {
			o.fail("%v", err)
			return o
		}
	}

	led := newLedger()
	members := make([]*member, cfg.managers)
	for i := range members {
		m, err := newMember(memberOptions{
			id: i, peers: peers[i*cfg.flows : (i+1)*cfg.flows],
			flowOpts: flow.Options{Interval: cfg.interval, FailDelay: cfg.failDelay, Timeout: cfg.timeout},
			brokers:  b.addrs(), topic: topic, spoolRoot: filepath.Join(root, "spool"), maxSpooled: cfg.maxSpooled, ledger: led,
		})
		if err != nil {
			o.fail("member %d: %v", i, err)
			for _, m := range members[:i] {
				m.prod.Close()
			}
			return o
		}
		members[i] = m
	}
	mctx, stopManagers := context.WithCancel(context.Background())
	pctx, stopProducers := context.WithCancel(context.Background())
	var mwg, pwg sync.WaitGroup
	stopped := false
	stopMembers := func() {
		if stopped {
			return
		}
		stopped = true
		stopManagers()
		mwg.Wait()
		stopProducers()
		pwg.Wait()
		for _, m := range members {
			m.mgr.Close()
			m.prod.Close()
		}
	}
	defer stopMembers()
	for _, m := range members {
		m.run(mctx, pctx, &mwg, &pwg)
	}
	allOperational := func() bool {
		for _, m := range members {
			if !m.operational() {
				return false
			}
		}
		return true
	}
	spooled := func() (total, most int, empty []bool) {
		empty = make([]bool, len(members))
		for i, m := range members {
			st := m.prod.Stats()
			total += st.Spooled + st.Queued
			most = max(most, st.Spooled)
			empty[i] = st.Spooled+st.Queued == 0
		}
		return total, most, empty
	}
	allEmpty := func() bool { t, _, _ := spooled(); return t == 0 }
	warmup := max(30*time.Second, 3*cfg.failDelay)
	if !waitUntil(warmup, allOperational) {
		o.fail("not every flow was operational %v after the start", warmup)
		return o
	}
	if !waitUntil(warmup, allEmpty) {
		o.fail("spools not empty %v after the start", warmup)
		return o
	}
	time.Sleep(cfg.interval) // let the connections settle
	o.gorWarm = goroutines()
	logf("%s: %d managers × %d flows operational; goroutines %+v", cfg.name, cfg.managers, cfg.flows, o.gorWarm)

	// The measured part: flapping peers, broker restarts.
	proc0, _ := daemonrun.Sample(os.Getpid())
	o.gorMin, o.gorMax = runtime.NumGoroutine(), runtime.NumGoroutine()
	flapCtx, stopFlap := context.WithCancel(context.Background())
	flapErrs := make(chan error, len(peers))
	var flappers sync.WaitGroup
	for k, p := range peers {
		flappers.Add(1)
		go func() {
			defer flappers.Done()
			p.flap(flapCtx, cfg.flap, uint64(k), flapErrs)
		}()
	}

	// The sampler: spool sizes, drain tracking, goroutines; disk and
	// /proc every second.
	var (
		smu      sync.Mutex
		draining *outage
		seen     []time.Duration // when each producer was first seen empty since draining.Up; -1: not yet
	)
	sampleCtx, stopSample := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		lastDisk := time.Time{}
		for {
			select {
			case <-sampleCtx.Done():
				return
			case now := <-t.C:
				total, most, empty := spooled()
				smu.Lock()
				o.maxSpooled = max(o.maxSpooled, most)
				o.maxSpooledTotal = max(o.maxSpooledTotal, total)
				if draining != nil && !draining.Drained {
					all := true
					for i, e := range empty {
						if e && seen[i] < 0 {
							seen[i] = now.Sub(draining.Up)
						}
						all = all && seen[i] >= 0
					}
					if all {
						draining.Drained = true
						draining.Drain = slices.Max(seen)
						slices.Sort(seen)
						draining.DrainP50 = seen[len(seen)/2]
					}
				}
				smu.Unlock()
				if now.Sub(lastDisk) >= time.Second {
					lastDisk = now
					files, bytes, tot := diskUse(members)
					// The whole process's count: classifying by stack
					// stops the world for a traceback of every
					// goroutine (seconds at 35,000), so it is done only
					// before and after.
					g := runtime.NumGoroutine()
					if s, err := daemonrun.Sample(os.Getpid()); err == nil {
						smu.Lock()
						o.rssMaxKB, o.fdsMax, o.threadsMax = max(o.rssMaxKB, s.RSSKB), max(o.fdsMax, s.FDs), max(o.threadsMax, s.Threads)
						smu.Unlock()
					}
					smu.Lock()
					o.maxFiles, o.maxBytes, o.maxTotalBytes = max(o.maxFiles, files), max(o.maxBytes, bytes), max(o.maxTotalBytes, tot)
					o.gorMin, o.gorMax = min(o.gorMin, g), max(o.gorMax, g)
					smu.Unlock()
				}
			}
		}
	}()

	failures := func() (n uint64) {
		for _, m := range members {
			n += m.prod.Stats().Failures
		}
		return n
	}
	// Steady periods of equal length around the outages; an outage that
	// takes longer (a slow stop or start) pushes the rest back, so every
	// drain has its full steady period.
	steady := max(0, cfg.duration-time.Duration(cfg.restarts)*cfg.outage) / time.Duration(cfg.restarts+1)
	for k := 1; k <= cfg.restarts; k++ {
		time.Sleep(steady)
		f0 := failures()
		out := outage{Down: time.Now()}
		b.stop()
		out.Stopping = time.Since(out.Down)
		logf("%s: brokers stopped in %v (restart %d of %d), %d reports sent so far", cfg.name, out.Stopping.Round(time.Millisecond), k, cfg.restarts, led.count())
		time.Sleep(cfg.outage)
		t0 := time.Now()
		if err := b.start(); err != nil {
			o.fail("restart %d: %v", k, err)
			break
		}
		out.Up = time.Now()
		out.Starting = out.Up.Sub(t0)
		out.SpooledAtUp, _, _ = spooled()
		out.FailuresDown = failures() - f0
		smu.Lock()
		if draining != nil && !draining.Drained {
			logf("%s: restart %d: the spools had not drained since restart %d", cfg.name, k, k-1)
		}
		o.outages = append(o.outages, out)
		draining, seen = &o.outages[len(o.outages)-1], make([]time.Duration, len(members))
		for i := range seen {
			seen[i] = -1
		}
		smu.Unlock()
		logf("%s: brokers back (started in %v), %d reports spooled", cfg.name, out.Starting.Round(time.Millisecond), out.SpooledAtUp)
	}
	time.Sleep(steady)
	stopFlap()
	flappers.Wait()
	close(flapErrs)
	for err := range flapErrs {
		o.fail("%v", err)
	}
	flapEnd := time.Now()
	// The last failures recover (OPERATIONAL reports), then the spools
	// drain.
	endWait := 3 * time.Minute // generous: a shared, loaded machine (timings are reported, not asserted)
	if !waitUntil(endWait, allOperational) {
		o.fail("not every flow operational %v after the flapping ended", endWait)
	}
	o.operationalEnd = time.Since(flapEnd)
	o.drainedEnd = waitUntil(endWait, allEmpty)
	o.finalDrain = time.Since(flapEnd)
	if !o.drainedEnd {
		t, _, _ := spooled()
		o.fail("%d reports still spooled %v after the flapping ended", t, endWait)
	}
	stopSample()
	<-sampled
	if n := len(o.outages); n > 0 && o.drainedEnd && !o.outages[n-1].Drained {
		// The flapping ended before the sampler saw every spool empty;
		// they all are now.
		last := &o.outages[n-1]
		last.Drained, last.AtEnd, last.Drain = true, true, time.Since(last.Up)
	}
	proc1, _ := daemonrun.Sample(os.Getpid())
	o.cpu, o.measured, o.hwmKB = proc1.CPU()-proc0.CPU(), proc1.At.Sub(proc0.At), proc1.HWMKB
	// The Kafka clients close connections idle for 20 s (franz-go's
	// ConnIdleTimeout); give them that long to come back to their
	// count before the restarts.
	settle := time.Now()
	for {
		time.Sleep(2 * time.Second)
		o.gorEnd = goroutines()
		if o.gorEnd.Fleet <= o.gorWarm.Fleet || time.Since(settle) > 30*time.Second {
			break
		}
	}
	o.gorSettle = time.Since(settle)
	if cfg.dumpDir != "" {
		dump(cfg.dumpDir, cfg.name)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	o.heapKB, o.stackKB = int64(ms.HeapInuse/1024), int64(ms.StackInuse/1024)
	o.pings = float64(len(peers)) / cfg.interval.Seconds()
	smu.Lock() // the sampler ended; this orders its writes before ours
	smu.Unlock()

	// No flow raises a report any more; deliver what they raised since
	// the spools were last empty (a loaded machine can fail a flow whose
	// peer is up), then stop the producers.
	stopManagers()
	mwg.Wait()
	if !waitUntil(endWait, allEmpty) {
		t, _, _ := spooled()
		o.fail("%d reports still spooled %v after the managers stopped", t, endWait)
	}
	stopMembers()
	for _, m := range members {
		s := m.prod.Stats()
		o.produced += s.Produced
		o.dropped += s.Dropped
		o.failures += s.Failures
		o.damaged += s.Damaged
		o.droppedBy[m.id] = s.Dropped
	}
	o.sendP50, o.sendP99, o.sendMax = led.sendTimes()
	sent, bad, n := led.snapshot()
	o.ledgerBad = bad
	logf("%s: %d reports sent; reading the topic back", cfg.name, n)
	// Every acknowledged produce is a record; read at least as many.
	recs, err := consume(b.addrs(), topic, int(o.produced), 2*time.Second, 2*time.Minute)
	if err != nil {
		o.fail("reading the topic: %v", err)
	}
	o.verdict = check(sent, recs)
	for _, m := range members {
		for _, f := range m.flows {
			o.lostBy[m.id] += o.verdict.LostByFlow[f]
		}
	}
	b.stop()
	for _, p := range peers {
		p.down()
	}
	// Everything of the fleet has stopped: the goroutines must be back to
	// where they were before it started.
	waitUntil(10*time.Second, func() bool { return runtime.NumGoroutine() <= o.gorBaseline })
	o.gorAfter = runtime.NumGoroutine()
	o.assert()
	return o
}

// assert records what the run must show.
func (o *outcome) assert() {
	v := o.verdict
	if v.OutOfOrder > 0 || v.Unknown > 0 || v.SplitFlows > 0 {
		o.fail("%d reports out of order, %d unknown, %d flows split over partitions", v.OutOfOrder, v.Unknown, v.SplitFlows)
	}
	if len(o.ledgerBad) > 0 {
		o.fail("the flows' reports do not alternate FAILED/OPERATIONAL: %s", strings.Join(o.ledgerBad, "; "))
	}
	if o.damaged > 0 {
		o.fail("%d spooled reports found damaged", o.damaged)
	}
	if o.maxSpooled > o.cfg.maxSpooled || o.maxFiles > o.cfg.maxSpooled {
		o.fail("spool over its bound of %d: %d reports (Stats), %d files", o.cfg.maxSpooled, o.maxSpooled, o.maxFiles)
	}
	if v.Sent == 0 {
		o.fail("no report was sent: the peers did not flap")
	}
	if o.cfg.dropCase {
		if o.dropped == 0 {
			o.fail("the drop case dropped nothing (spool bound %d)", o.cfg.maxSpooled)
		}
		for id, lost := range o.lostBy {
			if uint64(lost) > o.droppedBy[id] {
				o.fail("member %d lost %d reports but counted %d drops", id, lost, o.droppedBy[id])
			}
		}
	} else {
		if v.Lost > 0 || o.dropped > 0 {
			o.fail("%d reports lost, %d dropped", v.Lost, o.dropped)
		}
	}
	// Flat: with every peer up and the spools empty, the fleet holds as
	// many goroutines after the restarts as before (a little slack for
	// the Kafka clients' connections, which may differ by a broker); and
	// none is left once it stopped.
	if slack := 20 + o.gorWarm.Fleet/50; o.gorEnd.Fleet > o.gorWarm.Fleet+slack {
		o.fail("the fleet's goroutines grew from %d to %d (more than %d)", o.gorWarm.Fleet, o.gorEnd.Fleet, slack)
	}
	if o.gorAfter > o.gorBaseline+5 {
		o.fail("%d goroutines left after the fleet stopped (%d before it started)", o.gorAfter, o.gorBaseline)
	}
}

// diskUse returns the most *.json files and bytes in one spool directory
// and the bytes in all.
func diskUse(members []*member) (files int, bytes, total int64) {
	for _, m := range members {
		ents, err := os.ReadDir(m.spool)
		if err != nil {
			continue
		}
		n, sz := 0, int64(0)
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			n++
			if info, err := e.Info(); err == nil {
				sz += info.Size()
			} else if !errors.Is(err, os.ErrNotExist) {
				continue
			}
		}
		files, bytes, total = max(files, n), max(bytes, sz), total+sz
	}
	return files, bytes, total
}

// dump writes the goroutine (text) and heap profiles of the process, with
// every peer up and the spools empty, for a look at what the fleet holds.
func dump(dir, name string) {
	name = strings.ReplaceAll(name, " ", "-")
	for _, p := range []struct {
		profile, file string
		debug         int
	}{{"goroutine", name + ".goroutines.txt", 1}, {"heap", name + ".heap.pprof", 0}} {
		f, err := os.Create(filepath.Join(dir, p.file))
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			return
		}
		if p.profile == "heap" {
			runtime.GC()
		}
		pprof.Lookup(p.profile).WriteTo(f, p.debug)
		f.Close()
	}
}
