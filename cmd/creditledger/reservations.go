package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/server"
)

func reservationsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reservations",
		Short: "Maintain the id reservations (the LEDGER_IDS bucket)",
	}
	cmd.AddCommand(reservationsRebuildCmd())
	return cmd
}

func reservationsRebuildCmd() *cobra.Command {
	var tool storeTool
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild lost id reservations from the LEDGER stream (every ledger process stopped)",
		Long: "A ledger whose LEDGER_IDS bucket was deleted or recreated refuses to start (the id\n" +
			"reservations were lost). With every ledger process stopped, this reads the whole LEDGER\n" +
			"stream, reserves every license, item and PAYG contract id for the account that created\n" +
			"it and records every marketplace subscription's holder, then marks the bucket so the\n" +
			"ledger starts again. It refuses a bucket that was not lost. See docs/OPERATIONS.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return tool.run(cmd, "creditledger-reservations", func(ctx context.Context, nc *nats.Conn) error {
				got, err := server.RebuildReservations(ctx, nc, time.Now())
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "read LEDGER up to position %d\nids reserved: %d\nsubscription claims written: %d (found in place: %d)\n",
					got.Head, got.IDs, got.Subscriptions, got.Kept)
				if got.Undecodable > 0 {
					fmt.Fprintf(out, "events that could not be read (their ids not reserved): %d\n", got.Undecodable)
				}
				for _, c := range got.Clashes {
					fmt.Fprintf(out, "left as it is: %s\n", c)
				}
				fmt.Fprintln(out, "bucket marked: the ledger may start")
				return nil
			})
		},
	}
	tool.addFlags(cmd)
	return cmd
}
