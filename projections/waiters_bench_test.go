package projections

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/events"
)

// BenchmarkWaitersUnderFold: what min_position queries waiting on the projector cost the fold,
// the shape of the bench's lag phase at 1024 clients: 512 queries each wait for the position of
// the command its client just had accepted, while a round of 700 events is folded. One op is
// one round: every waiter released at its position.
func BenchmarkWaitersUnderFold(b *testing.B) {
	for _, waiters := range []int{64, 512} {
		b.Run(fmt.Sprintf("waiters=%d", waiters), func(b *testing.B) {
			const round = 700
			data, ids := benchStream(b, round*(b.N+1), 2000)
			decoded := make([]events.Event, len(data))
			for i, d := range data {
				ev, err := events.Decode(d)
				if err != nil {
					b.Fatal(err)
				}
				decoded[i] = ev
			}
			p := NewProjector(zerolog.Nop())
			b.ResetTimer()
			for n := range b.N {
				base := uint64(n * round)
				var wg sync.WaitGroup
				for w := range waiters {
					wg.Add(1)
					target := base + uint64(1+w*round/waiters)
					go func() {
						defer wg.Done()
						if err := p.WaitFor(context.Background(), target); err != nil {
							b.Error(err)
						}
					}()
				}
				for i := range round {
					pos := base + uint64(i) + 1
					p.ApplyDecoded(pos, ids[pos-1], decoded[pos-1], nil)
				}
				wg.Wait()
			}
		})
	}
}
