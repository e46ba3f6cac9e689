// Package opentsdb sends flow latency points to a server that speaks the
// OpenTSDB HTTP API (POST /api/put), batched, with retry and a bounded
// buffer so that a slow or absent server never blocks probing.
package opentsdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMetric is the metric name of the seed document.
const DefaultMetric = "sdn.flow.latency"

// Options configure an Exporter.
type Options struct {
	// URL is the server's base URL ("http://127.0.0.1:4242"); points go
	// to URL + "/api/put".
	URL string
	// Metric is the metric name of PutLatency; default DefaultMetric.
	Metric string
	// BatchSize is the most points in one request; default 50.
	BatchSize int
	// FlushInterval is how long a point may wait for a batch to fill;
	// default 1s.
	FlushInterval time.Duration
	// BufferSize bounds the points waiting to be sent; when it is full
	// the oldest are dropped and counted. Default 10000.
	BufferSize int
	// MinBackoff and MaxBackoff bound the wait between retries of a
	// failed request (doubling); defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request; default 5s.
	Timeout time.Duration
	Client  *http.Client
	Logger  *slog.Logger
}

// Point is one OpenTSDB data point.
type Point struct {
	Metric    string            `json:"metric"`
	Timestamp int64             `json:"timestamp"` // milliseconds since the epoch
	Value     float64           `json:"value"`
	Tags      map[string]string `json:"tags"`
}

// Stats are the exporter's counters.
type Stats struct {
	Sent     uint64 // points the server accepted
	Dropped  uint64 // points dropped: buffer full, or rejected by the server as invalid
	Failures uint64 // failed requests (each retried later)
	Pending  int    // points waiting in the buffer
}

// Exporter batches points to an OpenTSDB HTTP endpoint.
type Exporter struct {
	opts Options
	url  string
	log  *slog.Logger

	mu   sync.Mutex
	buf  []Point // oldest first; len ≤ BufferSize
	wake chan struct{}

	sent, dropped, failures atomic.Uint64

	cancel    context.CancelFunc
	ctx       context.Context
	closeOnce sync.Once
	done      chan struct{}
	running   atomic.Bool
}

// New checks opts and returns an Exporter; call Run to start sending.
func New(opts Options) (*Exporter, error) {
	if opts.URL == "" {
		return nil, errors.New("opentsdb: no URL")
	}
	if !strings.HasPrefix(opts.URL, "http://") && !strings.HasPrefix(opts.URL, "https://") {
		return nil, fmt.Errorf("opentsdb: URL %q: want http:// or https://", opts.URL)
	}
	if opts.Metric == "" {
		opts.Metric = DefaultMetric
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = 10000
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Exporter{
		opts:   opts,
		url:    strings.TrimSuffix(opts.URL, "/") + "/api/put",
		log:    opts.Logger,
		wake:   make(chan struct{}, 1),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}, nil
}

// PutLatency queues one latency point of the configured metric with tags
// flowid and direction ("forward" or "reverse"); the value is in
// milliseconds. It never blocks; it returns false if the exporter is closed.
func (e *Exporter) PutLatency(flowID, direction string, at time.Time, latency time.Duration) bool {
	return e.Put(Point{
		Metric:    e.opts.Metric,
		Timestamp: at.UnixMilli(),
		Value:     float64(latency) / float64(time.Millisecond),
		Tags:      map[string]string{"flowid": flowID, "direction": direction},
	})
}

// Put queues p without blocking. When the buffer is full the oldest point
// is dropped (and counted) to make room. It returns false if the exporter
// is closed.
func (e *Exporter) Put(p Point) bool {
	if e.ctx.Err() != nil {
		return false
	}
	e.mu.Lock()
	if len(e.buf) >= e.opts.BufferSize {
		n := len(e.buf) - e.opts.BufferSize + 1
		e.buf = append(e.buf[:0], e.buf[n:]...)
		e.dropped.Add(uint64(n))
	}
	e.buf = append(e.buf, p)
	full := len(e.buf) >= e.opts.BatchSize
	e.mu.Unlock()
	if full {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	e.mu.Lock()
	n := len(e.buf)
	e.mu.Unlock()
	return Stats{Sent: e.sent.Load(), Dropped: e.dropped.Load(), Failures: e.failures.Load(), Pending: n}
}

// Dropped returns how many points were dropped.
func (e *Exporter) Dropped() uint64 { return e.dropped.Load() }

// Run sends batches until ctx ends or Close is called, then makes one last
// attempt to send what is buffered. It returns nil.
func (e *Exporter) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("opentsdb: Run called twice")
	}
	defer close(e.done)
	stop := context.AfterFunc(ctx, e.cancel)
	defer stop()
	tick := time.NewTicker(e.opts.FlushInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-time.After(backoff):
			case <-e.ctx.Done():
			}
		} else {
			select {
			case <-tick.C:
			case <-e.wake:
			case <-e.ctx.Done():
			}
		}
		if e.ctx.Err() != nil {
			e.finalFlush()
			return nil
		}
		// Send every full batch now, and a partial one on the tick.
		for {
			ok, more := e.sendBatch(e.ctx)
			if !ok {
				backoff = min(max(2*backoff, e.opts.MinBackoff), e.opts.MaxBackoff)
				break
			}
			backoff = 0
			if !more {
				break
			}
		}
	}
}

func (e *Exporter) finalFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
	defer cancel()
	for {
		if ok, more := e.sendBatch(ctx); !ok || !more {
			return
		}
	}
}

// sendBatch posts up to BatchSize points. ok is false when the request
// failed and should be retried later; more tells that a full batch is
// still waiting.
func (e *Exporter) sendBatch(ctx context.Context) (ok, more bool) {
	e.mu.Lock()
	n := min(len(e.buf), e.opts.BatchSize)
	batch := append([]Point(nil), e.buf[:n]...)
	e.buf = append(e.buf[:0], e.buf[n:]...)
	e.mu.Unlock()
	if n == 0 {
		return true, false
	}
	err := e.post(ctx, batch)
	var perm permanentError
	switch {
	case err == nil:
		e.sent.Add(uint64(n))
	case errors.As(err, &perm):
		// The server will never take these points; retrying would block
		// the good ones behind them.
		e.dropped.Add(uint64(n))
		e.log.Warn("OpenTSDB server rejected points", "points", n, "err", err)
	default:
		e.failures.Add(1)
		e.requeue(batch)
		e.log.Debug("OpenTSDB put failed, will retry", "points", n, "err", err)
		return false, false
	}
	e.mu.Lock()
	more = len(e.buf) >= e.opts.BatchSize
	e.mu.Unlock()
	return true, more
}

// requeue puts a failed batch back in front of newer points, dropping the
// oldest when they no longer fit.
func (e *Exporter) requeue(batch []Point) {
	e.mu.Lock()
	defer e.mu.Unlock()
	room := e.opts.BufferSize - len(e.buf)
	if room < len(batch) {
		drop := len(batch) - max(room, 0)
		e.dropped.Add(uint64(drop))
		batch = batch[drop:]
	}
	e.buf = append(batch, e.buf...)
}

type permanentError struct{ error }

func (e *Exporter) post(ctx context.Context, batch []Point) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return permanentError{fmt.Errorf("encoding points: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("posting %d points to %s: %w", len(batch), e.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusBadRequest:
		// OpenTSDB answers 400 for points it cannot store.
		return permanentError{fmt.Errorf("posting to %s: %s: %s", e.url, resp.Status, bytes.TrimSpace(msg))}
	default:
		return fmt.Errorf("posting to %s: %s: %s", e.url, resp.Status, bytes.TrimSpace(msg))
	}
}

// Close stops Run (after its last flush attempt) and makes Put return
// false. It is safe to call more than once and without Run.
func (e *Exporter) Close() error {
	e.closeOnce.Do(func() {
		e.cancel()
		if e.running.Load() {
			<-e.done
		}
	})
	return nil
}
