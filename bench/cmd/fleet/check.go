package main

import (
	"cmp"
	"fmt"
	"slices"
)

// A PingReport carries no sequence number (the seed's message has only
// flowid, status, two timestamps in milliseconds and a random
// correlation_id). What identifies a report is its correlation_id, unique
// per report; what orders a flow's reports is the order in which the flow
// manager raised them, which the fleet records as it spools them (the
// ledger). On the Kafka side one flow's reports share a key, hence a
// partition, and the partition's offsets are the order a consumer sees.

// record is one message read back from the topic.
type record struct {
	Flow      string // the record's key (the report's flowid)
	ID        string // correlation_id
	Partition int32
	Offset    int64
}

// verdict compares what the flows spooled with what the topic holds.
type verdict struct {
	Sent       int // reports spooled (the ledger)
	Records    int // records read back
	Delivered  int // distinct reports read back
	Duplicates int // records whose report was already read
	// StaleDuplicates are duplicates read after a later report of the
	// same flow: a consumer that does not de-duplicate by correlation_id
	// sees the flow's status step back for one message.
	StaleDuplicates int
	Lost            int // spooled, never read
	OutOfOrder      int // read after a later report of the same flow, the first time
	Unknown         int // read, never spooled (or under another flow's key)
	SplitFlows      int // flows whose records are in more than one partition
	// LostByFlow lists the flows with losses (for the drop accounting).
	LostByFlow map[string]int
	Problems   []string // the first few, for the log
}

const maxProblems = 10

func (v *verdict) problem(format string, a ...any) {
	if len(v.Problems) < maxProblems {
		v.Problems = append(v.Problems, fmt.Sprintf(format, a...))
	}
}

// check walks each flow's records in offset order against its ledger.
// A record of a report not read before either is the next one the ledger
// expects, or a later one (the ones skipped are missing so far: lost if
// they never come, out of order if they come after it); a record of a
// report already read is a duplicate.
func check(ledger map[string][]string, recs []record) verdict {
	v := verdict{LostByFlow: map[string]int{}}
	byFlow := map[string][]record{}
	for _, r := range recs {
		byFlow[r.Flow] = append(byFlow[r.Flow], r)
	}
	v.Records = len(recs)
	for _, ids := range ledger {
		v.Sent += len(ids)
	}
	for flow, rs := range byFlow {
		if ledger[flow] == nil {
			v.Unknown += len(rs)
			v.problem("%d records of flow %q, which sent nothing", len(rs), flow)
		}
	}
	for flow, ids := range ledger {
		rs := byFlow[flow]
		slices.SortFunc(rs, func(a, b record) int {
			return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
		})
		if len(rs) > 0 && rs[0].Partition != rs[len(rs)-1].Partition {
			v.SplitFlows++
			v.problem("flow %s: records in partitions %d and %d", flow, rs[0].Partition, rs[len(rs)-1].Partition)
		}
		index := make(map[string]int, len(ids))
		for i, id := range ids {
			index[id] = i
		}
		read := make([]bool, len(ids))
		next := 0 // the ledger index after the latest report read
		for _, r := range rs {
			i, ok := index[r.ID]
			switch {
			case !ok:
				v.Unknown++
				v.problem("flow %s: record %s (partition %d offset %d) was never spooled by this flow", flow, r.ID, r.Partition, r.Offset)
			case read[i]:
				v.Duplicates++
				if i < next-1 {
					v.StaleDuplicates++
				}
			case i < next:
				read[i] = true
				v.Delivered++
				v.OutOfOrder++
				v.problem("flow %s: report %d of %d (%s) read after report %d", flow, i+1, len(ids), r.ID, next)
			default:
				read[i] = true
				v.Delivered++
				next = i + 1
			}
		}
		for i, ok := range read {
			if !ok {
				v.Lost++
				v.LostByFlow[flow]++
				if v.LostByFlow[flow] == 1 {
					v.problem("flow %s: report %d of %d (%s) never read", flow, i+1, len(ids), ids[i])
				}
			}
		}
	}
	slices.Sort(v.Problems)
	return v
}
