package writer

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/creditledger/creditledger/ledger"
)

// Each partition's fence rides on exactly one record: one that carries no head check of its own
// when there is one, else the first record of the partition in the append (whose head check it
// replaces); accounts without a fence are left as they are.
func TestCarryFences(t *testing.T) {
	t.Parallel()
	part := map[string]int{"a": 0, "b": 0, "c": 1, "d": 1, "s": 0, "t": 2}
	fenceOf := func(id string) (int, uint64, bool) {
		p, ok := part[id]
		return p, uint64(100 + p), ok
	}
	first := func(id string, version uint64) ledger.Record {
		return ledger.Record{AccountID: id, CheckVersion: true, ExpectedVersion: version}
	}
	more := func(id string) ledger.Record { return ledger.Record{AccountID: id} }
	carried := func(id string, p int) ledger.Record {
		return ledger.Record{AccountID: id, CheckFence: true, FencePartition: p, FenceHead: uint64(100 + p)}
	}
	for _, tc := range []struct {
		name        string
		given, want []ledger.Record
	}{
		{"an account's second record carries it; every version is still checked",
			[]ledger.Record{first("a", 7), more("a"), first("b", 9)},
			[]ledger.Record{first("a", 7), carried("a", 0), first("b", 9)}},
		{"a spare record later in the append is preferred to a version check",
			[]ledger.Record{first("a", 7), first("b", 9), more("b"), more("b")},
			[]ledger.Record{first("a", 7), first("b", 9), carried("b", 0), more("b")}},
		{"single records: the first account's carries it in place of its version check",
			[]ledger.Record{first("a", 7), first("b", 9)},
			[]ledger.Record{carried("a", 0), first("b", 9)}},
		{"one carrier per partition",
			[]ledger.Record{first("a", 7), first("c", 3), more("c"), first("d", 0)},
			[]ledger.Record{carried("a", 0), first("c", 3), carried("c", 1), first("d", 0)}},
		{"a subscription holder's lone record keeps its version check; the next account's carries the fence",
			[]ledger.Record{first("s", 4), first("a", 7)},
			[]ledger.Record{first("s", 4), carried("a", 0)}},
		{"a subscription holder's second record carries it",
			[]ledger.Record{first("s", 4), more("s")},
			[]ledger.Record{first("s", 4), carried("s", 0)}},
		{"a partition of subscription holders' lone records carries no fence",
			[]ledger.Record{first("t", 2), first("c", 3)},
			[]ledger.Record{first("t", 2), carried("c", 1)}},
		{"an account without a fence is untouched",
			[]ledger.Record{first("x", 5), more("x")},
			[]ledger.Record{first("x", 5), more("x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := append([]ledger.Record(nil), tc.given...)
			carryFences(recs, fenceOf, func(id string) bool { return id == "s" || id == "t" })
			assert.Equal(t, tc.want, recs)
			perPartition := map[int]int{}
			for _, r := range recs {
				assert.False(t, r.CheckVersion && r.CheckFence, "one expectation per record")
				if r.CheckFence {
					perPartition[r.FencePartition]++
				}
			}
			for p, n := range perPartition {
				assert.Equal(t, 1, n, "partition %d", p)
			}
		})
	}
}
