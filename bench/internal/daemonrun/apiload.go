package daemonrun

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// APILoad is the API load of issue 17's "API under load" runs: GET
// /v1/status at a rate from several clients on the unix socket, and a
// /metrics scrape every 5 s, until Stop.
type APILoad struct {
	hc       *http.Client
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ok, bad  atomic.Uint64
	lastBody atomic.Int64
	scrapes  atomic.Int64
	began    time.Time
	url      string
}

// LoadStats is what an APILoad did.
type LoadStats struct {
	Requests  uint64        // requests answered 200
	Errors    uint64        // other answers and failed requests
	Scrapes   int           // /metrics scrapes that succeeded
	For       time.Duration // how long the load ran
	BodyBytes int           // size of the last answer
}

// StatusPath is what the API load asks for unless told otherwise: the
// status as any client gets it (beyond 1,000 targets, without the
// per-target detail; "/v1/status?targets=all" asks for it).
const StatusPath = "/v1/status"

// StartAPILoad sends rate GET path (StatusPath, or another request the
// API answers with 200) a second from workers clients (each on its own
// schedule, waiting for its answer: a status with every one of 10,000
// targets is megabytes, so fewer get through than asked) and scrapes
// /metrics every 5 s.
func (d *Daemon) StartAPILoad(path string, rate, workers int) *APILoad {
	sock := filepath.Join(d.Dir, "reachd.sock")
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 32,
	}, Timeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	l := &APILoad{hc: hc, cancel: cancel, began: time.Now(), url: "http://reachd" + path}
	workers = max(workers, 1)
	per := time.Second * time.Duration(workers) / time.Duration(max(rate, 1))
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			select { // spread the clients' schedules over one period
			case <-ctx.Done():
				return
			case <-time.After(per * time.Duration(w) / time.Duration(workers)):
			}
			tick := time.NewTicker(per)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				l.get(ctx, hc)
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			if _, err := d.Scrape(ctx); err == nil {
				l.scrapes.Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

func (l *APILoad) get(ctx context.Context, hc *http.Client) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.bad.Add(1)
		}
		return
	}
	defer resp.Body.Close()
	nb, err := io.Copy(io.Discard, resp.Body)
	if err == nil && nb > 0 {
		l.lastBody.Store(nb)
	}
	if resp.StatusCode == http.StatusOK {
		l.ok.Add(1)
	} else {
		l.bad.Add(1)
	}
}

// Stop ends the load, closes its connections and says what it did.
func (l *APILoad) Stop() LoadStats {
	l.cancel()
	l.wg.Wait()
	l.hc.CloseIdleConnections()
	return LoadStats{Requests: l.ok.Load(), Errors: l.bad.Load(), Scrapes: int(l.scrapes.Load()),
		For: time.Since(l.began), BodyBytes: int(l.lastBody.Load())}
}
