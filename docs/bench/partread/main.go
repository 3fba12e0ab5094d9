// Command partread times jetstore.Store.ReadPartitions on a running ledger's LEDGER stream for
// growing shares of its partitions, beside a read of the whole stream, a few rounds each (a
// consumer that stalls shows as an outlier): the figures behind ledger.PartitionReadShare.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

func main() {
	url := flag.String("nats-url", nats.DefaultURL, "NATS server(s)")
	rounds := flag.Int("rounds", 3, "reads of each share")
	flag.Parse()
	if err := run(*url, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "partread:", err)
		os.Exit(1)
	}
}

func run(url string, rounds int) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx := context.Background()
	st, err := jetstore.Open(ctx, nc, jetstore.Config{})
	if err != nil {
		return err
	}
	n := st.Partitions()
	fmt.Printf("partitions %d, partitioned subjects %v\n", n, st.PartitionsApart())
	for _, k := range []int{1, 2, 4, 8, 16, 17, 21, n} {
		ps := make([]int, min(k, n))
		for i := range ps {
			ps[i] = i
		}
		for range rounds {
			read := 0
			start := time.Now()
			var err error
			if k == n {
				_, err = st.Read(ctx, 1, func(ledger.Record) error { read++; return nil })
			} else {
				_, err = st.ReadPartitions(ctx, 1, n, ps, func(ledger.Record) error { read++; return nil })
			}
			if err != nil {
				return err
			}
			fmt.Printf("%2d partitions: %6d events in %v\n", len(ps), read, time.Since(start).Round(time.Millisecond))
		}
	}
	return nil
}
