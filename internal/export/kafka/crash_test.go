package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var spoolCrashIterations = flag.Int("spool-crash-iterations", 100, "SIGKILLs of TestSIGKILLDuringSpooling (.ci/run passes fewer)")

// Environment of the child process of TestSIGKILLDuringSpooling.
const (
	crashDirEnv   = "REACHD_SPOOL_CRASH_DIR"
	crashPortEnv  = "REACHD_SPOOL_CRASH_PORT"
	crashStartEnv = "REACHD_SPOOL_CRASH_START"
)

// TestSpoolCrashChild is the process TestSIGKILLDuringSpooling kills: a
// producer on the spool directory it is given, delivering to the fake
// cluster, that reports "crash-N" for N = start, start+1, ... as fast as it
// can and prints "ok N" once Report returned (the report is accepted: it
// must not be lost).
func TestSpoolCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestSIGKILLDuringSpooling")
	}
	port, _ := strconv.Atoi(os.Getenv(crashPortEnv))
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	p := newProducer(t, port, dir, func(o *Options) {
		o.MaxSpooled = 1 << 20
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	run(t, p)
	// Bounded: a parent that died without killing it leaves no spinner.
	for i, end := start, time.Now().Add(20*time.Second); time.Now().Before(end); i++ {
		if err := p.Report(fmt.Sprintf("crash-%d", i), StatusFailed); err != nil {
			fmt.Printf("err %d %v\n", i, err)
			continue
		}
		fmt.Printf("ok %d\n", i)
	}
}

// TestSIGKILLDuringSpooling runs a producer in a child process, reporting
// as fast as it can while delivering to a broker, and kills it with
// SIGKILL at a random moment (0-500 ms after its first accepted report),
// again and again on the same spool directory. After every kill the spool
// holds only whole messages (nothing damaged, nothing truncated); at the
// end, after a last producer drained the spool, the broker holds every
// report any child accepted, whole.
func TestSIGKILLDuringSpooling(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs from .ci/run with a reduced -spool-crash-iterations")
	}
	port := freePort(t)
	cluster(t, port)
	dir := t.TempDir()
	accepted := map[int]bool{}
	next := 0
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 16))
	t.Logf("seed %d, %d iterations", seed, *spoolCrashIterations)
	var spooledMax int
	for i := range *spoolCrashIterations {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCrashChild$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashPortEnv+"="+strconv.Itoa(port), crashStartEnv+"="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatalf("iteration %d: the child accepted nothing: %s", i, stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		n := 0
		see := func(l string) {
			var k int
			if _, err := fmt.Sscanf(l, "ok %d", &k); err == nil {
				accepted[k] = true
				next = max(next, k+1)
				n++
			} else if strings.HasPrefix(l, "err ") {
				t.Fatalf("iteration %d: a report was refused: %s", i, l)
			}
		}
		see(first)
		for l := range lines {
			see(l)
		}
		next++ // the one in flight at the kill, if any, may be spooled: never reuse its number

		// The spool as the next process finds it: only whole messages.
		s, damaged, err := openSpool(dir, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(damaged) > 0 {
			t.Fatalf("iteration %d: damaged spool messages after SIGKILL: %v", i, damaged)
		}
		for _, name := range s.names {
			if _, err := readMessage(filepath.Join(dir, name)); err != nil {
				t.Fatalf("iteration %d: %s: %v", i, name, err)
			}
		}
		spooledMax = max(spooledMax, s.len())
		if i < 3 || i == *spoolCrashIterations-1 {
			t.Logf("iteration %d: %d reports accepted, %d waiting in the spool", i, n, s.len())
		}
	}

	// Drain what is left, then every accepted report must be at the broker.
	p := newProducer(t, port, dir, nil)
	run(t, p)
	waitFor(t, "the spool to drain", func() bool { return p.Stats().Spooled == 0 })
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+strconv.Itoa(port)), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	missing := len(accepted)
	got, records := map[int]bool{}, 0
	for missing > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			records++
			var m Message
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatalf("a truncated or damaged report reached the broker: %q: %v", r.Value, err)
			}
			var k int
			if _, err := fmt.Sscanf(m.Payload.Report.FlowID, "crash-%d", &k); err != nil {
				t.Fatalf("report %q", r.Value)
			}
			if accepted[k] && !got[k] {
				missing--
			}
			got[k] = true
		})
	}
	t.Logf("%d iterations: %d reports accepted, %d records at the broker (at least once: duplicates are redeliveries after a kill), at most %d spooled at a kill", *spoolCrashIterations, len(accepted), records, spooledMax)
	if missing > 0 {
		var lost []int
		for k := range accepted {
			if !got[k] {
				lost = append(lost, k)
			}
		}
		t.Fatalf("%d accepted reports lost, e.g. %v", missing, lost[:min(10, len(lost))])
	}
}
