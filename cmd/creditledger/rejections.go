package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

func rejectionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rejections",
		Short: "Maintain the rejection log (the LEDGER_REJECTIONS stream)",
	}
	cmd.AddCommand(rejectionsAcceptLossCmd())
	return cmd
}

func rejectionsAcceptLossCmd() *cobra.Command {
	var tool storeTool
	cmd := &cobra.Command{
		Use:   "accept-loss",
		Short: "Let the ledger start on a rejection log that was lost (every ledger process stopped)",
		Long: "A ledger whose LEDGER_REJECTIONS stream was deleted, or deleted and created again,\n" +
			"refuses to start (the rejection log was lost): a retry of a command the lost log\n" +
			"rejected would be decided afresh, and could be accepted. Restore the stream from a\n" +
			"backup if there is one. Otherwise, with every ledger process stopped, this records the\n" +
			"log there is now (creating it, empty, when it is missing) in LEDGER's metadata, so the\n" +
			"ledger starts and decides such retries again. See docs/OPERATIONS.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return tool.run(cmd, "creditledger-rejections", func(ctx context.Context, nc *nats.Conn) error {
				// Only a deployment that holds a ledger: Open would create an empty LEDGER (and
				// the log) where --nats-url names the wrong server or account.
				st, err := jetstore.OpenExisting(ctx, nc, jetstore.Config{})
				if err != nil {
					return err
				}
				lost, err := jetstore.AcceptLostRejections(ctx, st)
				if err != nil {
					return err
				}
				if !lost {
					fmt.Fprintln(cmd.OutOrStdout(), "nothing was lost: LEDGER records the rejection log there is now")
					return nil
				}
				fmt.Fprintln(cmd.OutOrStdout(), "the rejection log there is now is recorded: the ledger may start (retries of what the lost log rejected are decided again)")
				return nil
			})
		},
	}
	tool.addFlags(cmd)
	return cmd
}
