// Command streamleader prints the server name of a JetStream stream's leader, so that a
// takeover measurement (docs/bench/takeover.sh, VICTIM=leader) can kill the node that leads it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("nats-url", nats.DefaultURL, "NATS server(s)")
	stream := flag.String("stream", "LEDGER", "stream name")
	flag.Parse()
	if err := run(*url, *stream); err != nil {
		fmt.Fprintln(os.Stderr, "streamleader:", err)
		os.Exit(1)
	}
}

func run(url, stream string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("stream %s reports no leader", stream)
	}
	fmt.Println(info.Cluster.Leader)
	return nil
}
