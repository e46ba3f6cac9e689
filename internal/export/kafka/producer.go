package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reachd/reachd/internal/statefile"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure a Producer.
type Options struct {
	// Brokers are the seed brokers ("host:port").
	Brokers []string
	// Topic receives the PingReports (the seed's kafka.topic.flow.status).
	Topic string
	// SpoolDir holds messages until the brokers acknowledge them. It must
	// be private to this producer.
	SpoolDir string
	// MaxSpooled bounds the spool; when it is full the oldest messages are
	// dropped and counted. Default 10000.
	MaxSpooled int
	// QueueSize bounds the messages Enqueue holds until the writer has
	// spooled them; when it is full the oldest are dropped and counted.
	// Default 1000.
	QueueSize int
	// BatchSize is the most messages in one produce; default 100.
	BatchSize int
	// AttemptTimeout bounds one produce attempt; default 10s.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed attempts
	// (doubling); defaults 200ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Now stamps the messages; default time.Now.
	Now func() time.Time
	// ClientOpts are extra franz-go options (TLS, SASL, ...).
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
}

// Stats are the producer's counters.
type Stats struct {
	Produced uint64 // messages acknowledged by the brokers
	Dropped  uint64 // messages lost: dropped from the full spool (and not delivered by an attempt under way), or not written (disk full)
	Failures uint64 // failed produce attempts (retried)
	Damaged  uint64 // spooled messages found damaged (moved aside, not sent)
	Spooled  int    // messages waiting in the spool
	Queued   int    // messages Enqueue took that are not in the spool yet
}

// Producer sends PingReports at least once. Report spools a message and
// returns; Run delivers the spool in order and deletes what the brokers
// acknowledged. Messages left in the spool by an earlier process are sent
// too.
type Producer struct {
	opts  Options
	kopts []kgo.Opt
	cl    *kgo.Client // owned by Run once it started
	log   *slog.Logger

	mu    sync.Mutex // guards spool
	spool *spool
	// spooled is spool.len(), kept outside mu: Stats (hence every
	// /metrics scrape) must not wait behind the spool's fsyncs.
	spooled atomic.Int64
	wake    chan struct{}

	// The queue in front of the spool (queue.go).
	qmu     sync.Mutex
	queue   []Message
	qclosed bool
	qwake   chan struct{}
	qdone   chan struct{}
	queued  atomic.Int64

	produced, dropped, failures, damaged atomic.Uint64

	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	done      chan struct{}
	running   atomic.Bool
}

// New opens the spool and creates the Kafka client (which connects
// lazily: New succeeds while the brokers are down).
func New(opts Options) (*Producer, error) {
	if len(opts.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	if opts.Topic == "" {
		return nil, errors.New("kafka: no topic")
	}
	if opts.SpoolDir == "" {
		return nil, errors.New("kafka: no spool directory")
	}
	if opts.MaxSpooled <= 0 {
		opts.MaxSpooled = 10000
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = queueDefault
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(10*time.Second, opts.MinBackoff)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	sp, damaged, err := openSpool(opts.SpoolDir, opts.MaxSpooled)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	kopts := append([]kgo.Opt{
		kgo.SeedBrokers(opts.Brokers...),
		kgo.DefaultProduceTopic(opts.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// At least once is the contract; the spool retries. Without
		// idempotence a timed-out attempt can be failed and retried from
		// the spool instead of waiting for the broker indefinitely.
		kgo.DisableIdempotentWrite(),
		kgo.RecordDeliveryTimeout(max(opts.AttemptTimeout, time.Second)), // franz-go minimum 1s
		kgo.ProducerLinger(0),
		// After an outage the client must learn the brokers and leaders
		// again; franz-go's default allows one metadata refresh every 5 s,
		// which made the slowest producer of the fleet benchmark wait
		// ~7 s after the brokers were back; with 1 s, ~2 s. In steady
		// state refreshes still follow MetadataMaxAge (5 min).
		kgo.MetadataMinAge(time.Second),
	}, opts.ClientOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Producer{
		opts: opts, kopts: kopts, cl: cl, log: opts.Logger, spool: sp,
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		qwake: make(chan struct{}, 1), qdone: make(chan struct{}),
	}
	p.spooled.Store(int64(sp.len()))
	go p.writer() // ends in Close
	p.reportDamaged(damaged)
	return p, nil
}

// reportDamaged logs and counts spooled messages found damaged: they are
// not sent (a truncated PingReport would mislead its consumers); the rest
// of the spool is delivered.
func (p *Producer) reportDamaged(damaged []*statefile.Damaged) {
	for _, d := range damaged {
		p.damaged.Add(1)
		p.log.Error("Kafka spool: "+d.Error()+"; not sent, delivering the rest of the spool", "file", d.File)
	}
}

// Report spools a PingReport for flowID with status st, stamped now. It
// returns after the message is on disk (an fsync), and fails only if it
// could not be written.
func (p *Producer) Report(flowID string, st Status) error {
	return p.Send(NewPingReport(flowID, st, p.opts.Now()))
}

// Send spools m (see Report).
func (p *Producer) Send(m Message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("kafka: encoding report: %w", err)
	}
	p.mu.Lock()
	dropped, err := p.spool.add(data)
	p.spooled.Store(int64(p.spool.len()))
	p.mu.Unlock()
	if dropped > 0 {
		p.dropped.Add(uint64(dropped))
		p.log.Warn("Kafka spool full, dropped oldest reports", "dropped", dropped, "max", p.opts.MaxSpooled)
	}
	if err != nil {
		// Not on disk (disk full, read-only, ...): the report is lost.
		// Counted with the drops; the caller logs it, probing goes on.
		p.dropped.Add(1)
		return fmt.Errorf("kafka: %w", err)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Stats returns the producer's counters. It does not wait for the spool's
// disk writes.
func (p *Producer) Stats() Stats {
	n := int(p.spooled.Load())
	return Stats{Produced: p.produced.Load(), Dropped: p.dropped.Load(), Failures: p.failures.Load(), Damaged: p.damaged.Load(), Spooled: n, Queued: int(p.queued.Load())}
}

// Run delivers spooled messages until ctx ends or Close is called; it
// returns nil then. What is not delivered stays in the spool.
func (p *Producer) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("kafka: Run called twice")
	}
	defer close(p.done)
	stop := context.AfterFunc(ctx, p.cancel)
	defer stop()
	var backoff time.Duration
	for {
		for {
			ok, more := p.deliver()
			if !ok {
				backoff = min(max(2*backoff, p.opts.MinBackoff), p.opts.MaxBackoff)
				break
			}
			backoff = 0
			if !more {
				break
			}
		}
		var retry <-chan time.Time
		if backoff > 0 {
			retry = time.After(backoff)
		}
		select {
		case <-p.ctx.Done():
			return nil
		case <-retry:
		case <-p.wake:
			if backoff > 0 { // new message while the brokers are down: keep backing off
				select {
				case <-p.ctx.Done():
					return nil
				case <-time.After(backoff):
				}
			}
		}
	}
}

// deliver produces the oldest batch. ok is false when the attempt failed;
// more tells that messages are still waiting.
func (p *Producer) deliver() (ok, more bool) {
	p.mu.Lock()
	names, data, damaged := p.spool.peek(p.opts.BatchSize)
	p.spooled.Store(int64(p.spool.len()))
	p.mu.Unlock()
	p.reportDamaged(damaged)
	if len(names) == 0 {
		return true, false
	}
	recs := make([]*kgo.Record, len(data))
	name := make(map[*kgo.Record]string, len(data))
	for i, d := range data {
		var m Message
		_ = json.Unmarshal(d, &m) // only for the key; the value is sent as stored
		recs[i] = &kgo.Record{Key: []byte(m.Payload.Report.FlowID), Value: d}
		name[recs[i]] = names[i]
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.AttemptTimeout)
	res := p.cl.ProduceSync(ctx, recs...)
	cancel()
	// Acknowledge what was stored even if other records failed; order is
	// kept per flow because one key goes to one partition and a failed
	// partition fails all its later records. ProduceSync lists the
	// results in the order they completed, not in the order of recs
	// (partitions on different brokers answer in any order): match them
	// by record, or a failed report is deleted and a delivered one sent
	// again.
	var acked []string
	for _, r := range res {
		if r.Err == nil {
			acked = append(acked, name[r.Record])
		}
	}
	p.mu.Lock()
	lost, err := p.spool.ack(acked)
	if err != nil {
		p.log.Error("Kafka spool cleanup failed", "err", err)
	}
	more = p.spool.len() > 0
	p.spooled.Store(int64(p.spool.len()))
	p.mu.Unlock()
	if lost > 0 {
		p.dropped.Add(uint64(lost))
		p.log.Warn("Kafka spool full, dropped oldest reports", "dropped", lost, "max", p.opts.MaxSpooled)
	}
	p.produced.Add(uint64(len(acked)))
	if err := res.FirstErr(); err != nil {
		p.failures.Add(1)
		if p.ctx.Err() == nil {
			p.log.Warn("Kafka produce failed, reports stay spooled", "topic", p.opts.Topic, "pending", len(names)-len(acked), "err", err)
		}
		if errors.Is(err, kerr.UnknownTopicID) {
			// The topic was deleted and created again: the client holds
			// the old topic ID and would fail forever. Start afresh.
			if cl, err := kgo.NewClient(p.kopts...); err == nil {
				p.cl.Close()
				p.cl = cl
			}
		}
		return false, more
	}
	return true, more
}

// Close spools what Enqueue holds, stops Run and closes the client;
// spooled messages stay on disk for the next Producer on the same
// directory. It is safe to call more than once.
func (p *Producer) Close() error {
	p.closeOnce.Do(func() {
		p.closeQueue()
		p.cancel()
		if p.running.Load() {
			<-p.done
		}
		p.cl.Close()
	})
	return nil
}
