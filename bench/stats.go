package bench

import (
	"sort"
	"sync"
	"time"
)

// Latencies collects durations from many goroutines.
type Latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d)
	l.mu.Unlock()
}

// Merge adds a batch of durations.
func (l *Latencies) Merge(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

// Percentiles summarises the collected durations in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary computes the percentiles.
func (l *Latencies) Summary() Percentiles {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return Percentiles{}
	}
	s := append([]time.Duration(nil), l.all...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return Percentiles{Count: len(s), P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: at(1)}
}
