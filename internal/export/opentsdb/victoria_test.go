package opentsdb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"
)

// vmBinary is VictoriaMetrics from the Debian package victoria-metrics; it
// speaks the OpenTSDB HTTP put API on -opentsdbHTTPListenAddr.
const vmBinary = "/usr/bin/victoria-metrics"

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type victoria struct {
	httpAddr, putAddr string
	dir               string
	cmd               *exec.Cmd
}

func needVictoria(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(vmBinary); err != nil {
		t.Skipf("%s not found (apt-get install victoria-metrics): %v", vmBinary, err)
	}
}

// start runs VictoriaMetrics on loopback and waits until it is healthy.
func (v *victoria) start(t *testing.T) {
	t.Helper()
	v.cmd = exec.Command(vmBinary,
		"-storageDataPath="+v.dir,
		"-httpListenAddr="+v.httpAddr,
		"-opentsdbHTTPListenAddr="+v.putAddr,
		"-retentionPeriod=100y",
		"-loggerLevel=WARN",
	)
	v.cmd.Stderr = os.Stderr
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := v.cmd
	t.Cleanup(func() { v.stopCmd(cmd) })
	for range 100 {
		if resp, err := http.Get("http://" + v.httpAddr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("VictoriaMetrics did not become healthy in 5s")
}

func (v *victoria) stopCmd(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (v *victoria) stop(t *testing.T) { v.stopCmd(v.cmd) }

type series struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// export reads every series of metric back through /api/v1/export.
func (v *victoria) export(t *testing.T, metric string) map[string]series {
	t.Helper()
	if resp, err := http.Get("http://" + v.httpAddr + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	q := url.Values{"match[]": {fmt.Sprintf(`{__name__=%q}`, metric)}}
	resp, err := http.Get("http://" + v.httpAddr + "/api/v1/export?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]series{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s series
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out[s.Metric["flowid"]+"/"+s.Metric["direction"]] = s
	}
	return out
}

func (v *victoria) waitPoints(t *testing.T, metric string, want int) map[string]series {
	t.Helper()
	var got map[string]series
	for range 100 {
		got = v.export(t, metric)
		n := 0
		for _, s := range got {
			n += len(s.Values)
		}
		if n >= want {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("VictoriaMetrics holds %v, want %d points", got, want)
	return nil
}

func TestVictoriaMetrics(t *testing.T) {
	needVictoria(t)
	v := &victoria{httpAddr: freePort(t), putAddr: freePort(t), dir: t.TempDir()}
	v.start(t)
	e, err := New(Options{URL: "http://" + v.putAddr, Metric: "reachd.test.latency", BatchSize: 4, FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, e)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond) // export ends at now
	for i := range 5 {
		at := base.Add(time.Duration(i) * time.Second)
		e.PutLatency("flowping-alpha", "forward", at, time.Duration(i+1)*time.Millisecond)
		e.PutLatency("flowping-alpha", "reverse", at, time.Duration(i+1)*500*time.Microsecond)
	}
	got := v.waitPoints(t, "reachd.test.latency", 10)
	fw, rv := got["flowping-alpha/forward"], got["flowping-alpha/reverse"]
	if fmt.Sprint(fw.Values) != "[1 2 3 4 5]" || fmt.Sprint(rv.Values) != "[0.5 1 1.5 2 2.5]" {
		t.Errorf("values forward %v reverse %v", fw.Values, rv.Values)
	}
	if len(fw.Timestamps) != 5 || fw.Timestamps[0] != base.UnixMilli() || fw.Timestamps[4] != base.Add(4*time.Second).UnixMilli() {
		t.Errorf("timestamps %v, want from %d", fw.Timestamps, base.UnixMilli())
	}
	// VictoriaMetrics has the points before the exporter has read its
	// answer and counted them as sent: wait for the count.
	waitFor(t, "10 points counted as sent", func() bool { return e.Stats().Sent >= 10 })
	if st := e.Stats(); st.Sent != 10 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestVictoriaMetricsOutage: the server is down while points are put;
// what fits the buffer arrives once it is up, the rest is counted as
// dropped.
func TestVictoriaMetricsOutage(t *testing.T) {
	needVictoria(t)
	v := &victoria{httpAddr: freePort(t), putAddr: freePort(t), dir: t.TempDir()}
	const buffer = 20
	e, _ := New(Options{URL: "http://" + v.putAddr, BatchSize: 5, BufferSize: buffer, FlushInterval: 20 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Timeout: time.Second})
	run(t, e)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond) // export ends at now
	const n = 30
	for i := range n {
		e.PutLatency("down-up", "forward", base.Add(time.Duration(i)*time.Second), time.Duration(i)*time.Millisecond)
		if i == 5 {
			waitFor(t, "a failed request", func() bool { return e.Stats().Failures > 0 })
		}
	}
	// Retries go on: a batch being posted is out of the buffer, and a
	// failed one is counted before it is back (or dropped). Take stats with
	// every point pending or dropped, none out.
	var st Stats
	waitFor(t, "failures during the outage, no batch out of the buffer", func() bool {
		st = e.Stats()
		return st.Failures >= 3 && uint64(st.Pending)+st.Dropped+st.Sent == n
	})
	if st.Dropped != n-buffer || st.Pending != buffer {
		t.Errorf("during outage: %+v, want %d dropped, %d pending", st, n-buffer, buffer)
	}
	v.start(t)
	waitFor(t, "delivery after the server came up", func() bool { return e.Stats().Pending == 0 })
	t.Logf("after recovery: %+v", e.Stats())
	got := v.waitPoints(t, DefaultMetric, buffer)["down-up/forward"]
	sort.Slice(got.Values, func(i, j int) bool { return got.Values[i] < got.Values[j] })
	if len(got.Values) != buffer || got.Values[0] != n-buffer || got.Values[buffer-1] != n-1 {
		t.Errorf("delivered %v, want the newest %d (values %d..%d)", got.Values, buffer, n-buffer, n-1)
	}
	// Pending is 0 once the last batch is taken, before its answer is read
	// and it is counted as sent: wait for the count.
	waitFor(t, "the delivered points counted as sent", func() bool { return e.Stats().Sent >= buffer })
	if st := e.Stats(); st.Sent != buffer || st.Dropped != n-buffer || st.Pending != 0 {
		t.Errorf("after recovery: %+v", st)
	}
	_ = context.Background
}
