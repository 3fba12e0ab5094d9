package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/natsconn"
)

// storeTool is what the store maintenance commands (reservations rebuild, rejections accept-loss,
// command-ids record) share: the ledger's NATS connection, from the same flags, and their exit
// codes.
type storeTool struct {
	url  string
	conn natsconn.Options
}

// addFlags adds the connection flags to cmd.
func (s *storeTool) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.url, "nats-url", defaultNATSURL(), "NATS URL of the ledger's JetStream ($NATS_URL, when set, is the default)")
	s.conn.AddCredentialFlags(f)
	s.conn.AddTLSFlags(f)
}

// run connects as name and calls fn with a context that SIGINT and SIGTERM end; a failure
// exits with exitError.
func (s *storeTool) run(cmd *cobra.Command, name string, fn func(ctx context.Context, nc *nats.Conn) error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s.conn.URL = s.url
	nc, err := natsconn.Connect(s.conn, nats.Name(name))
	if err != nil {
		return &exitCodeError{exitError, err}
	}
	defer nc.Close()
	if err := fn(ctx, nc); err != nil {
		return &exitCodeError{exitError, err}
	}
	return nil
}
