package writer

import (
	"fmt"
	"testing"

	"github.com/creditledger/creditledger/ledger"
)

// benchState is 30,000 accounts and 1,000,000 compacted idempotency entries (about what 1M
// events leave), for the restore benchmark.
func benchState() *Writer {
	w := &Writer{accounts: map[string]*account{}, idem: idempotency{accepted: map[string]*commandRecord{}, compacted: map[uint64]uint64{}, rejected: map[string]*rejection{}}}
	w.opts.Partitions.Count = 64
	for i := 0; i < 30000; i++ {
		id := fmt.Sprintf("acct-%06d", i)
		a := ledger.NewAccount(id)
		a.Version = 33
		w.accounts[id] = &account{state: a, head: uint64(i), hash: "h"}
	}
	for i := 0; i < 1000000; i++ {
		e, _ := compactEntry(uint64(i+1), 1, i%64)
		w.idem.compacted[commandKey(fmt.Sprint("cmd-", i))] = e
	}
	return w
}

// BenchmarkRestoreWhole decodes and installs a whole snapshot: the restart path of a node that owns
// every partition.
func BenchmarkRestoreWhole(b *testing.B) {
	data, err := benchState().encodeSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		st, err := decodeSnapshot(data)
		if err != nil {
			b.Fatal(err)
		}
		r := &Writer{}
		r.opts.Partitions.Count = 64
		r.install(st)
	}
}
