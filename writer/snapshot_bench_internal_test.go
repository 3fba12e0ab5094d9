package writer

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/creditledger/creditledger/ledger"
)

// benchState is 30,000 accounts and 1,000,000 compacted idempotency entries (about what 1M
// events leave), for the restore benchmark.
func benchState() *Writer {
	w := &Writer{cache: accountCache{accounts: map[string]*account{}}, idem: idempotency{accepted: map[string]*commandRecord{}, compacted: map[uint64]uint64{}, rejected: map[string]*rejection{}}}
	w.opts.Partitions.Count = 64
	for i := 0; i < 30000; i++ {
		id := fmt.Sprintf("acct-%06d", i)
		a := ledger.NewAccount(id)
		a.Version = 33
		w.cache.accounts[id] = &account{state: a, head: uint64(i), hash: "h"}
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

// pauseState is n accounts with two licenses and an allocation each, 10 compacted idempotency
// entries and one compact rejection per account: the state a periodic snapshot captures.
func pauseState(n int) *Writer {
	w := &Writer{cache: accountCache{accounts: map[string]*account{}}, idem: idempotency{accepted: map[string]*commandRecord{},
		compacted: map[uint64]uint64{}, rejected: map[string]*rejection{}, rejCompact: map[uint64]uint64{}}}
	w.opts.Partitions.Count = 16
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("acct-%06d", i)
		a := ledger.NewAccount(id)
		a.Version = 5
		for j := range 2 {
			lid := fmt.Sprintf("lic-%d-%d", i, j)
			a.Licenses[lid] = ledger.License{ID: lid, Source: "sales", Credits: decimal.NewFromInt(100), TermMonths: 12,
				Status: ledger.StatusActive, PurchasedAt: at, ActivatedAt: at, ExpiresAt: at.AddDate(1, 0, 0)}
			a.LicenseOrder = append(a.LicenseOrder, lid)
		}
		a.Allocations["file_security"] = decimal.NewFromInt(40)
		w.cache.accounts[id] = &account{state: a, head: uint64(i), hash: "0123456789abcdef0123456789abcdef"}
		for j := range 10 {
			e, _ := compactEntry(uint64(i*10+j+1), 1, i%16)
			w.idem.compacted[commandKey(fmt.Sprint("cmd-", i, "-", j))] = e
		}
		e, _ := rejectEntry(ledger.RejectionAt{Position: uint64(i + 1)}, i%16)
		w.idem.rejCompact[commandKey(fmt.Sprint("rej-", i))] = e
	}
	return w
}

// BenchmarkSnapshotPause is the writer goroutine's part of a periodic whole snapshot: before
// (the encode on the loop, as every snapshot was encoded) and now (the capture; the encode runs
// beside). Compaction, common to both, is left out; touch is the clone of one account a command
// changes while the encoder may still read it (once per account and snapshot).
func BenchmarkSnapshotPause(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		w := pauseState(n)
		b.Run(fmt.Sprintf("accounts=%d/encode-on-loop", n), func(b *testing.B) {
			for range b.N {
				if _, err := w.capture(1).encodeWhole(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("accounts=%d/capture", n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				f := w.share(w.capture(1))
				b.StopTimer()
				f.capture.release() // (beside, after the encode)
				close(f.encoded)
				b.StartTimer()
				w.thaw(f)
			}
		})
	}
	a := pauseState(1).cache.accounts["acct-000000"]
	b.Run("touch", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			a.state = a.state.Clone()
		}
	})
}
