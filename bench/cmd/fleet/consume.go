package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reachd/reachd/internal/export/kafka"
)

// consume reads the topic from the start until it has at least want
// records and then nothing more comes for quiet, or until timeout.
func consume(brokers []string, topic string, want int, quiet, timeout time.Duration) ([]record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []record
	var bad error
	for ctx.Err() == nil {
		pctx, c := ctx, context.CancelFunc(func() {})
		if len(out) >= want {
			pctx, c = context.WithTimeout(ctx, quiet)
		}
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil && ctx.Err() == nil
		c()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			var m kafka.Message
			if err := json.Unmarshal(r.Value, &m); err != nil || string(r.Key) != m.Payload.Report.FlowID {
				bad = fmt.Errorf("record at %d/%d: key %q, value %q", r.Partition, r.Offset, r.Key, r.Value)
			}
			out = append(out, record{Flow: string(r.Key), ID: m.CorrelationID, Partition: r.Partition, Offset: r.Offset})
		})
		if bad != nil {
			return out, bad
		}
		if n == 0 && len(out) >= want && idle {
			return out, nil
		}
	}
	return out, nil // short: check reports what is missing
}
