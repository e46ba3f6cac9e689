package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCheck(t *testing.T) {
	ledger := map[string][]string{"a": {"a1", "a2", "a3"}, "b": {"b1", "b2"}}
	recs := func(flow string, p int32, ids ...string) []record {
		var out []record
		for i, id := range ids {
			out = append(out, record{Flow: flow, ID: id, Partition: p, Offset: int64(10 * i)})
		}
		return out
	}
	cat := func(rss ...[]record) []record {
		var out []record
		for _, rs := range rss {
			out = append(out, rs...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		recs []record
		want verdict
	}{
		{"all in order", cat(recs("a", 0, "a1", "a2", "a3"), recs("b", 1, "b1", "b2")),
			verdict{Sent: 5, Records: 5, Delivered: 5}},
		{"a batch sent twice", cat(recs("a", 0, "a1", "a2", "a1", "a2", "a3"), recs("b", 1, "b1", "b2")),
			verdict{Sent: 5, Records: 7, Delivered: 5, Duplicates: 2, StaleDuplicates: 1}},
		{"the last one sent twice", cat(recs("a", 0, "a1", "a2", "a3", "a3"), recs("b", 1, "b1", "b2")),
			verdict{Sent: 5, Records: 6, Delivered: 5, Duplicates: 1}},
		{"one lost", cat(recs("a", 0, "a1", "a3"), recs("b", 1, "b1", "b2")),
			verdict{Sent: 5, Records: 4, Delivered: 4, Lost: 1, LostByFlow: map[string]int{"a": 1}}},
		{"reordered", cat(recs("a", 0, "a1", "a3", "a2"), recs("b", 1, "b1", "b2")),
			verdict{Sent: 5, Records: 5, Delivered: 5, OutOfOrder: 1}},
		{"nothing read", nil,
			verdict{Sent: 5, Lost: 5, LostByFlow: map[string]int{"a": 3, "b": 2}}},
		{"another flow's report under this key", cat(recs("a", 0, "a1", "a2", "b1", "a3"), recs("b", 1, "b2")),
			verdict{Sent: 5, Records: 5, Delivered: 4, Unknown: 1, Lost: 1, LostByFlow: map[string]int{"b": 1}}},
		{"a flow nobody spooled", cat(recs("a", 0, "a1", "a2", "a3"), recs("b", 1, "b1", "b2"), recs("c", 2, "c1")),
			verdict{Sent: 5, Records: 6, Delivered: 5, Unknown: 1}},
		{"one flow in two partitions", cat(recs("a", 0, "a1", "a2"), recs("a", 3, "a3"), recs("b", 1, "b1", "b2")),
			verdict{Sent: 5, Records: 5, Delivered: 5, SplitFlows: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := check(ledger, tc.recs)
			if tc.want.LostByFlow == nil {
				tc.want.LostByFlow = map[string]int{}
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(verdict{}, "Problems")); diff != "" {
				t.Errorf("check (-want +got):\n%s", diff)
			}
			clean := got.Lost == 0 && got.OutOfOrder == 0 && got.Unknown == 0 && got.SplitFlows == 0
			if clean != (len(got.Problems) == 0) {
				t.Errorf("problems %q for verdict %+v", got.Problems, got)
			}
		})
	}
}
