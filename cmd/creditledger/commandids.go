package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/server"
)

// commandIDsCmd groups the maintenance of LEDGER_COMMANDS. It is not "commands": that would sit
// one letter from `command`, which sends commands to the ledger.
func commandIDsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "command-ids",
		Short: "Maintain the record of command ids across partitions (the LEDGER_COMMANDS bucket)",
	}
	cmd.AddCommand(commandIDsRecordCmd())
	return cmd
}

// commandIDsRecordCmd is `command-ids record`: "record", not "rebuild" (as `reservations
// rebuild`), because it only adds what is missing, beside running nodes, and marks nothing.
func commandIDsRecordCmd() *cobra.Command {
	var tool storeTool
	cmd := &cobra.Command{
		Use:   "record",
		Short: "Record the command ids of the last 30 days from the streams (safe while nodes run)",
		Long: "A lone embedded node records no command id while it owns every partition, nodes of an\n" +
			"older build recorded none, and a deleted LEDGER_COMMANDS bucket is not noticed: once other\n" +
			"nodes own partitions, such a command_id can be reused for one of their accounts and be\n" +
			"decided afresh. This reads the events LEDGER stored in the last 30 days (the bucket's\n" +
			"retention) and the rejections in LEDGER_REJECTIONS, and records each command_id for the\n" +
			"account it was used for first. It only creates keys, so nodes may run meanwhile; a\n" +
			"command_id another account holds is left as it is and listed. See docs/OPERATIONS.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return tool.run(cmd, "creditledger-command-ids", func(ctx context.Context, nc *nats.Conn) error {
				got, err := server.RecordCommandIDs(ctx, nc, time.Now())
				if err != nil {
					return err
				}
				printCommandIDsRecorded(cmd, got)
				return nil
			})
		},
	}
	tool.addFlags(cmd)
	return cmd
}

// printCommandIDsRecorded writes what RecordCommandIDs did, as `reservations rebuild` does.
func printCommandIDsRecorded(cmd *cobra.Command, got server.CommandIDsRecorded) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "read what was stored since %s\n", got.Since.UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "LEDGER positions read: %s\n", positionRange(got.Events))
	if got.NoRejectionLog {
		fmt.Fprintln(out, "LEDGER_REJECTIONS: no such stream (no rejected command recorded)")
	} else {
		fmt.Fprintf(out, "LEDGER_REJECTIONS positions read: %s\n", positionRange(got.Rejections))
	}
	fmt.Fprintf(out, "command ids recorded: %d (found in place: %d)\n", got.Recorded, got.Found)
	if got.Undecodable > 0 {
		fmt.Fprintf(out, "events that could not be read (their command ids not recorded): %d\n", got.Undecodable)
	}
	for _, c := range got.Conflicts {
		fmt.Fprintf(out, "left as it is: %s\n", c)
	}
}

func positionRange(r server.PositionRange) string {
	if r.From == 0 {
		return "none (nothing stored since)"
	}
	return fmt.Sprintf("%d-%d", r.From, r.Head)
}
