// Command creditledger runs the ledger (serve) and talks to a running one (command, query).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes: 0 accepted, 1 rejected by the ledger, 2 usage or connection error.
const (
	exitRejected = 1
	exitError    = 2
)

// exitError carries a process exit code out of a cobra command.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }

func main() {
	root := &cobra.Command{
		Use:           "creditledger",
		Short:         "Event-sourced credits ledger on NATS JetStream",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), commandCmd(), queryCmd(), benchCmd())
	root.AddCommand(auditCmd())
	if err := root.Execute(); err != nil {
		code := exitError
		if ec, ok := err.(*exitCodeError); ok {
			code = ec.code
		}
		fmt.Fprintln(os.Stderr, "creditledger:", err)
		os.Exit(code)
	}
}
