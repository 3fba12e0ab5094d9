// Command creditledger runs the ledger (serve) and talks to a running one (command, query).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/creditledger/creditledger/internal/buildinfo"
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
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the CLI with args and returns the exit status; every failure ends as one line on
// stderr, never a panic.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		code := exitError
		var ec *exitCodeError
		if errors.As(err, &ec) {
			code = ec.code
		}
		fmt.Fprintln(stderr, "creditledger:", err)
		return code
	}
	return 0
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "creditledger",
		Short:         "Event-sourced credits ledger on NATS JetStream",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("creditledger {{.Version}}\n")
	root.AddCommand(serveCmd(), commandCmd(), queryCmd(), benchCmd())
	root.AddCommand(auditCmd(), reservationsCmd(), rejectionsCmd(), commandIDsCmd())
	// Flags are kebab-case (--license-id); the snake_case spelling of a request field
	// (--license_id) is accepted as the same flag.
	root.SetGlobalNormalizationFunc(kebabCase)
	root.InitDefaultCompletionCmd()
	requireSubcommand(root)
	addExamples(root)
	return root
}

// kebabCase makes --a_b the same flag as --a-b.
func kebabCase(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
}

func versionString() string {
	info := buildinfo.Read()
	v := info.Version
	if info.Revision != "" {
		rev := info.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " (" + rev
		if info.Modified {
			v += ", modified"
		}
		v += ")"
	}
	if info.GoVersion != "" {
		v += " " + info.GoVersion
	}
	return v
}

// requireSubcommand makes every command that only groups others (command, query, audit) fail
// on an unknown or missing subcommand: cobra would print help and exit 0 (`query balnce`).
func requireSubcommand(c *cobra.Command) {
	for _, sub := range c.Commands() {
		requireSubcommand(sub)
	}
	if c.Runnable() || !c.HasSubCommands() || !c.HasParent() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%s needs a subcommand: %s (see %s --help)", cmd.CommandPath(), subcommandNames(cmd), cmd.CommandPath())
		}
		msg := fmt.Sprintf("unknown subcommand %q for %s", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return fmt.Errorf("%s (one of: %s)", msg, subcommandNames(cmd))
	}
}

func subcommandNames(c *cobra.Command) string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return strings.Join(names, ", ")
}
