package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/natsconn"
	"github.com/creditledger/creditledger/projections"
	"github.com/creditledger/creditledger/server"
)

// exitAuditFailed is the exit code of an audit that found a problem (verify, rebuild).
const exitAuditFailed = 1

// addCheckpointFlags adds the checkpoint publisher's flags to serve.
func addCheckpointFlags(f *pflag.FlagSet, c *server.CheckpointConfig) {
	f.StringVar(&c.KeyFile, "checkpoint-key", "", "Ed25519 checkpoint signing key, PKCS#8 PEM (default: DATA-DIR/"+audit.DefaultKeyFileName+", generated on first start)")
	f.IntVar(&c.Every, "checkpoint-every", server.DefaultCheckpointEvery, "sign a checkpoint after this many events (negative: never by count)")
	f.DurationVar(&c.Interval, "checkpoint-interval", server.DefaultCheckpointInterval, "sign a checkpoint this often when there are new events (negative: never by time)")
	f.StringVar(&c.Origin, "checkpoint-origin", audit.DefaultOrigin, "the checkpoints' origin line and signing key name: unique to this ledger, no spaces or +")
	f.BoolVar(&c.Disabled, "no-checkpoints", false, "do not sign checkpoints")
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit the ledger from its JetStream stream, without trusting the service",
		Long: "Every audit subcommand reads the LEDGER and LEDGER_CHECKPOINTS streams over its own NATS\n" +
			"connection and recomputes what it reports. See docs/AUDITORS.md.",
	}
	cmd.AddCommand(auditReplayCmd(), auditExportCmd(), auditVerifyCmd(), auditBalanceCmd(),
		auditRebuildCmd(), auditProofCmd(), auditCheckpointCmd(), auditConsistencyCmd())
	return cmd
}

// auditConn holds the flags every audit subcommand shares.
type auditConn struct {
	url  string
	conn natsconn.Options // credentials (the auditor role) and TLS
}

func (a *auditConn) add(f *pflag.FlagSet) {
	f.StringVar(&a.url, "nats-url", defaultNATSURL(), "NATS URL of the ledger's JetStream ($NATS_URL, when set, is the default)")
	a.conn.AddCredentialFlags(f)
	a.conn.AddTLSFlags(f)
}

// open connects and opens the stream; the context ends on SIGINT/SIGTERM.
func (a *auditConn) open(cmd *cobra.Command) (context.Context, *nats.Conn, *audit.Source, func(), error) {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	a.conn.URL = a.url
	nc, err := natsconn.Connect(a.conn, nats.Name("creditledger-audit"))
	if err != nil {
		stop()
		return nil, nil, nil, nil, &exitCodeError{exitError, err}
	}
	src, err := audit.NewSource(ctx, nc)
	if err != nil {
		nc.Close()
		stop()
		return nil, nil, nil, nil, &exitCodeError{exitError, err}
	}
	return ctx, nc, src, func() { nc.Close(); stop() }, nil
}

// progress draws a bar on stderr while src is read, only when stdout is a terminal (so piped
// and redirected runs stay quiet). The returned func clears it.
func progress(cmd *cobra.Command, src *audit.Source, label string) func() {
	out, ok := cmd.OutOrStdout().(*os.File)
	if !ok || !term.IsTerminal(int(out.Fd())) || !term.IsTerminal(int(os.Stderr.Fd())) {
		return func() {}
	}
	bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(label),
		progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	var max uint64
	src.Progress = func(pos, last uint64) {
		if last != max {
			max = last
			bar.ChangeMax64(int64(last))
		}
		_ = bar.Set64(int64(pos))
	}
	return func() {
		src.Progress = nil
		_ = bar.Finish()
	}
}

// filterFlags are replay's and export's selection.
type filterFlags struct {
	account      string
	from         uint64
	since, until string
}

func (ff *filterFlags) add(f *pflag.FlagSet) {
	f.StringVar(&ff.account, "account", "", "only this account's events")
	f.Uint64Var(&ff.from, "from-position", 0, "start at this stream position")
	f.StringVar(&ff.since, "since", "", "only events that occurred at or after this RFC 3339 time")
	f.StringVar(&ff.until, "until", "", "only events that occurred before this RFC 3339 time")
}

func (ff *filterFlags) filter() (audit.Filter, error) {
	f := audit.Filter{AccountID: ff.account, FromPosition: ff.from}
	var err error
	if f.Since, err = optTime("since", ff.since); err != nil {
		return f, err
	}
	f.Until, err = optTime("until", ff.until)
	return f, err
}

func optTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, &exitCodeError{exitError, fmt.Errorf("--%s: want an RFC 3339 time such as 2026-01-15T09:00:00Z", name)}
	}
	return t, nil
}

func auditReplayCmd() *cobra.Command {
	var c auditConn
	var ff filterFlags
	var withPosition bool
	cmd := &cobra.Command{
		Use:   "replay [--account ID] [--from-position P] [--since T] [--until T] [--with-position]",
		Short: "Write the stored messages (events, partition ownership records) as JSON lines, in stream order, exactly as stored",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter()
			if err != nil {
				return err
			}
			ctx, _, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			defer progress(cmd, src, "replay")()
			w := bufio.NewWriter(cmd.OutOrStdout())
			if withPosition {
				_, err = audit.Replay(ctx, src, f, w)
			} else {
				var odd int
				_, odd, err = audit.ReplayStored(ctx, src, f, w)
				if odd > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "creditledger: %d stored messages are not single-line JSON; written in the positioned form with data_base64\n", odd)
				}
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			return err
		},
	}
	c.add(cmd.Flags())
	ff.add(cmd.Flags())
	cmd.Flags().BoolVar(&withPosition, "with-position", false,
		`wrap each event as {"position","subject","stored_at","event"} (the stored bytes unchanged inside)`)
	return cmd
}

func auditExportCmd() *cobra.Command {
	var c auditConn
	var ff filterFlags
	var format, out string
	cmd := &cobra.Command{
		Use:   "export --format jsonl|csv --out FILE|- [filters]",
		Short: "Export the events to a file as JSON lines or CSV (one row per event, payload as JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter()
			if err != nil {
				return err
			}
			if format != audit.FormatJSONL && format != audit.FormatCSV {
				return &exitCodeError{exitError, fmt.Errorf("--format must be jsonl or csv")}
			}
			ctx, _, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			if out == "-" { // the export itself is the output: no progress bar, no summary line
				_, err := audit.Export(ctx, src, f, format, cmd.OutOrStdout())
				return err
			}
			stop := progress(cmd, src, "export")
			n, err := writeAtomically(out, func(w io.Writer) (int, error) { return audit.Export(ctx, src, f, format, w) })
			stop()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d events to %s (%s)\n", n, out, format)
			return nil
		},
	}
	c.add(cmd.Flags())
	ff.add(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", audit.FormatJSONL, "jsonl or csv")
	cmd.Flags().StringVar(&out, "out", "", "file to write (replaced only once the export is complete); - writes to stdout")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// writeAtomically writes a temporary file beside path and renames it into place on success.
func writeAtomically(path string, write func(io.Writer) (int, error)) (int, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	n, err := write(bw)
	if err == nil {
		err = errors.Join(bw.Flush(), tmp.Sync())
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return n, err
}

// keyFlags pin checkpoint keys.
type keyFlags struct{ files []string }

func (k *keyFlags) add(f *pflag.FlagSet) {
	f.StringArrayVar(&k.files, "public-key", nil, "pin a checkpoint public key: the ledger's .vkey (note verifier key) or .pub file, base64, or a format-1 checkpoint file (repeatable)")
}

func (k *keyFlags) keys() ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, f := range k.files {
		pub, err := audit.ReadPublicKey(f)
		if err != nil {
			return nil, &exitCodeError{exitError, err}
		}
		out = append(out, pub)
	}
	return out, nil
}

func auditVerifyCmd() *cobra.Command {
	var c auditConn
	var kf keyFlags
	var account, trusted string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--account ID] [--trusted-checkpoint FILE] [--public-key FILE]",
		Short: "Recompute every hash, chain and checkpoint; exit 1 naming the first broken event",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := audit.VerifyOptions{AccountID: account}
			var err error
			if opts.PublicKeys, err = kf.keys(); err != nil {
				return err
			}
			if trusted != "" {
				sc, err := audit.ReadCheckpointFile(trusted)
				if err != nil {
					return &exitCodeError{exitError, err}
				}
				if sc.Log != nil {
					opts.TrustedLog = sc.Log
				} else {
					opts.Trusted = &sc.Checkpoint
				}
			}
			ctx, _, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			stop := progress(cmd, src, "verify")
			rep, err := audit.Verify(ctx, src, opts)
			stop()
			if err != nil {
				return err
			}
			if asJSON {
				printJSON(cmd.OutOrStdout(), rep)
			} else {
				printVerify(cmd.OutOrStdout(), rep)
			}
			if f, ok := rep.First(); ok {
				return &exitCodeError{exitAuditFailed, fmt.Errorf("verification failed at %s", f)}
			}
			return nil
		},
	}
	c.add(cmd.Flags())
	kf.add(cmd.Flags())
	cmd.Flags().StringVar(&account, "account", "", "verify only this account's chain")
	cmd.Flags().StringVar(&trusted, "trusted-checkpoint", "", "a checkpoint file saved earlier (audit checkpoint --out): the history up to it must be unchanged")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printVerify(w io.Writer, rep audit.Report) {
	if f, ok := rep.First(); ok {
		fmt.Fprintf(w, "FAILED: first broken event: %s\n", f)
		for _, x := range rep.Findings[1:] {
			fmt.Fprintf(w, "  also: %s\n", x)
		}
		if rep.FindingsTotal > len(rep.Findings) {
			fmt.Fprintf(w, "  ... %d findings in all\n", rep.FindingsTotal)
		}
	} else {
		fmt.Fprintln(w, "OK: the stored history verifies")
	}
	fmt.Fprintf(w, "events: %d\n", rep.Events)
	if rep.Fences > 0 {
		fmt.Fprintf(w, "partition ownership records: %d\n", rep.Fences)
	}
	fmt.Fprintf(w, "accounts: %d\nhead position: %d\n", rep.Accounts, rep.HeadPosition)
	if rep.AccountsRoot != "" {
		fmt.Fprintf(w, "log tree root: %s\nhead digest (accounts root): %s\nlog digest: %s\n", rep.LogRoot, rep.AccountsRoot, rep.LogDigest)
	}
	fmt.Fprintf(w, "checkpoints verified: %d", rep.Checkpoints)
	if len(rep.KeyIDs) > 0 {
		pinned := "not pinned"
		if rep.KeyPinned {
			pinned = "pinned"
		}
		fmt.Fprintf(w, " (signed by key %s, %s)", strings.Join(rep.KeyIDs, ", "), pinned)
	}
	fmt.Fprintln(w)
	if rep.Trusted != 0 {
		fmt.Fprintf(w, "trusted checkpoint: %d\n", rep.Trusted)
	}
	for _, x := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func auditBalanceCmd() *cobra.Command {
	var c auditConn
	var account, at string
	var position uint64
	cmd := &cobra.Command{
		Use:   "balance --account ID (--at T | --position P)",
		Short: "The balance, licenses and billing models at a past time or position, folded from the events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var bound projections.AsOf
			var err error
			if bound.Time, err = optTime("at", at); err != nil {
				return err
			}
			bound.TimeSet, bound.Position = at != "", position // the zero time is a time like any other
			if (at == "") == (position == 0) {
				return &exitCodeError{exitError, errors.New("give exactly one of --at and --position")}
			}
			ctx, _, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			pit, err := audit.BalanceAt(ctx, src, account, bound, ledger.DefaultCatalogue())
			if errors.Is(err, audit.ErrHistoryBroken) {
				return &exitCodeError{exitAuditFailed, err}
			}
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), pit)
			return nil
		},
	}
	c.add(cmd.Flags())
	cmd.Flags().StringVar(&account, "account", "", "account id")
	cmd.Flags().StringVar(&at, "at", "", "RFC 3339 time")
	cmd.Flags().Uint64Var(&position, "position", 0, "stream position")
	_ = cmd.MarkFlagRequired("account")
	return cmd
}

func auditRebuildCmd() *cobra.Command {
	var c auditConn
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild every read model from position 0 and compare with the live ones; exit 1 listing differences",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, nc, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			live, err := commands.NewClient(nc, timeout)
			if err != nil {
				return err
			}
			stop := progress(cmd, src, "rebuild")
			rep, err := audit.Rebuild(ctx, src, live, ledger.DefaultCatalogue())
			stop()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				printJSON(w, rep)
			} else {
				for _, d := range rep.Differences {
					fmt.Fprintf(w, "DIFFERENT: %s\n", d)
				}
				fmt.Fprintf(w, "rebuilt %d accounts to position %d; %d answers compared, %d differences, %d parked messages\n",
					rep.Accounts, rep.Position, rep.Compared, rep.DifferencesTotal, rep.Parked)
			}
			if !rep.OK {
				return &exitCodeError{exitAuditFailed, fmt.Errorf("%d differences between the live and the rebuilt read models", rep.DifferencesTotal)}
			}
			return nil
		},
	}
	c.add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each live query")
	return cmd
}
