package daemonrun

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scrape is one /metrics answer.
type Scrape struct {
	Bytes int           // uncompressed body
	Took  time.Duration // request to last byte
	// Sums holds every sample's value summed by metric name (labels
	// dropped): reachd_path_probe_attempts_total over all paths,
	// go_goroutines, ...
	Sums map[string]float64
}

// Scrape fetches /metrics from the daemon's metrics listener, from inside
// its namespace.
func (d *Daemon) Scrape(ctx context.Context) (Scrape, error) {
	if d.cfg.Metrics == "-" {
		return Scrape{}, fmt.Errorf("daemonrun: the daemon has no metrics listener")
	}
	c := d.httpClient()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.cfg.Metrics+"/metrics", nil)
	if err != nil {
		return Scrape{}, err
	}
	// Uncompressed, as the size is reported: Prometheus asks for gzip, but
	// the text is what reachd builds.
	req.Header.Set("Accept-Encoding", "identity")
	began := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return Scrape{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(began)
	if err != nil {
		return Scrape{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Scrape{}, fmt.Errorf("/metrics: %s", resp.Status)
	}
	return Scrape{Bytes: len(body), Took: took, Sums: ParseSums(body)}, nil
}

func (d *Daemon) httpClient() *http.Client {
	d.httpOnce.Do(func() {
		ns := d.NS
		d.http = &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					return ns.DialContext(ctx, nil, network, addr)
				},
				DisableCompression: true,
				MaxIdleConns:       1,
			},
		}
	})
	return d.http
}

// ParseSums sums the samples of a Prometheus text exposition by metric
// name (the part before "{" or the first space).
func ParseSums(body []byte) map[string]float64 {
	sums := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		name := l
		if i := strings.IndexAny(l, "{ "); i >= 0 {
			name = l[:i]
		}
		// The value follows the labels: the first field after "}" (or
		// after the name); an optional timestamp may follow it.
		rest := l[len(name):]
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sums[name] += v
	}
	return sums
}

// Sampler samples a daemon's /proc (and, when scrape is set, its
// go_goroutines) every period until Stop.
type Sampler struct {
	mu      sync.Mutex
	samples []ProcSample
	stop    chan struct{}
	done    chan struct{}
}

// StartSampler starts sampling d now and every period. With scrape, each
// sample also scrapes /metrics for go_goroutines: the daemon pays for that
// scrape (about 16 KB of text without per-target series), so keep the
// period in seconds.
func (d *Daemon) StartSampler(period time.Duration, scrape bool) *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	take := func() {
		ps, err := Sample(d.PID())
		if err != nil {
			return
		}
		if scrape {
			ctx, cancel := context.WithTimeout(context.Background(), period)
			if m, err := d.Scrape(ctx); err == nil {
				ps.Goroutines = int(m.Sums["go_goroutines"])
			}
			cancel()
		}
		s.mu.Lock()
		s.samples = append(s.samples, ps)
		s.mu.Unlock()
	}
	take()
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				take()
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the samples, oldest first.
func (s *Sampler) Stop() []ProcSample {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// Peaks are the maxima over samples.
type Peaks struct {
	RSSKB, HWMKB, AnonKB  int64
	Threads, FDs, Gorouts int
}

// PeaksOf returns the maxima of ss.
func PeaksOf(ss []ProcSample) Peaks {
	var p Peaks
	for _, s := range ss {
		p.RSSKB = max(p.RSSKB, s.RSSKB)
		p.HWMKB = max(p.HWMKB, s.HWMKB)
		p.AnonKB = max(p.AnonKB, s.AnonKB)
		p.Threads = max(p.Threads, s.Threads)
		p.FDs = max(p.FDs, s.FDs)
		p.Gorouts = max(p.Gorouts, s.Goroutines)
	}
	return p
}
