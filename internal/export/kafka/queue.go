package kafka

// The hand-off between the flows and the spool. Send returns only after
// two fsyncs (the message, then its directory), which take milliseconds
// on an idle disk and seconds on a busy one: the fleet benchmark measured
// Send at p99 3 s, max 9 s with 1,000 spools on one disk. A flow that
// calls Send from its ping loop stops pinging for that long, and a flow
// manager with one owner goroutine would stop all its flows. Enqueue
// instead puts the message in a bounded queue, in order, and returns; one
// writer goroutine per Producer spools the queue.

// queueDefault bounds the queue when Options.QueueSize is not set.
const queueDefault = 1000

// Enqueue hands m to the producer without waiting for the disk. Messages
// are spooled in the order they were enqueued, by the producer's writer
// goroutine. When QueueSize messages are already waiting, the oldest is
// dropped and counted (as the spool does when it is full). After Close,
// Enqueue spools m itself before returning.
func (p *Producer) Enqueue(m Message) {
	p.qmu.Lock()
	if p.qclosed {
		p.qmu.Unlock()
		p.Send(m) // counts and logs its own failure
		return
	}
	dropped := 0
	for len(p.queue) >= p.opts.QueueSize {
		p.queue = p.queue[1:]
		dropped++
	}
	p.queue = append(p.queue, m)
	p.queued.Add(int64(1 - dropped))
	p.qmu.Unlock()
	if dropped > 0 {
		p.dropped.Add(uint64(dropped))
		p.log.Warn("Kafka report queue full (the spool's disk is slow), dropped oldest reports", "dropped", dropped, "max", p.opts.QueueSize)
	}
	select {
	case p.qwake <- struct{}{}:
	default:
	}
}

// QueueReport enqueues a PingReport for flowID with status st, stamped
// now (see Enqueue). It never waits for the disk.
func (p *Producer) QueueReport(flowID string, st Status) {
	p.Enqueue(NewPingReport(flowID, st, p.opts.Now()))
}

// writer spools the queue until closeQueue, then spools what is left and
// returns.
func (p *Producer) writer() {
	defer close(p.qdone)
	for {
		<-p.qwake
		for {
			p.qmu.Lock()
			batch, closed := p.queue, p.qclosed
			p.queue = nil
			p.qmu.Unlock()
			for _, m := range batch {
				if err := p.Send(m); err != nil {
					p.log.Error("Kafka report not spooled", "flowid", m.Payload.Report.FlowID, "status", string(m.Payload.Report.Status), "err", err)
				}
				p.queued.Add(-1)
			}
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
		}
	}
}

// closeQueue makes the writer spool what is queued and stop, and waits
// for it.
func (p *Producer) closeQueue() {
	p.qmu.Lock()
	p.qclosed = true
	p.qmu.Unlock()
	select {
	case p.qwake <- struct{}{}:
	default:
	}
	<-p.qdone
}
