package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/bench"
	"github.com/creditledger/creditledger/natsconn"
)

func benchCmd() *cobra.Command {
	var o bench.Options
	var jsonPath, logLevel, cpuProfile, memProfile string
	var conn natsconn.Options // credentials and TLS towards --nats-url
	cmd := &cobra.Command{
		Use:     "bench",
		Example: "  creditledger bench --accounts 10000 --clients 64 --duration 30s --json bench.json",
		Args:    cobra.NoArgs,
		Short:   "Load-test a ledger through its NATS API and compare with raw JetStream in the same run",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Log = log
			if !bench.ValidMix(o.Load.Mix) {
				return fmt.Errorf("--mix %q: want %s or %s", o.Load.Mix, bench.MixFull, bench.MixAllocateRelease)
			}
			if o.NATSURL != "" {
				if o.ConnOptions, err = conn.NATSOptions(); err != nil {
					return err
				}
			}
			if o.NATSURL == "" && len(o.CPUOf) > 0 {
				return fmt.Errorf("--cpu-of counts the processes of a ledger driven with --nats-url; an embedded one is counted already")
			}
			if o.NATSURL == "" && o.DataDir == "" {
				dir, err := os.MkdirTemp("", "creditledger-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				o.DataDir = dir
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := bench.Run(ctx, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if memProfile != "" {
				if err := writeHeapProfile(memProfile); err != nil {
					return err
				}
			}
			rep.WriteTable(cmd.OutOrStdout())
			if jsonPath != "" {
				return rep.WriteJSON(jsonPath)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NATSURL, "nats-url", "", "drive this running ledger (default: start an embedded one in a temp dir)")
	conn.AddCredentialFlags(f)
	conn.AddTLSFlags(f)
	f.StringVar(&o.DataDir, "data-dir", "", "data dir of the embedded ledger (default: a temp dir, removed afterwards)")
	f.IntVar(&o.Load.Accounts, "accounts", 10000, "accounts in the load")
	f.IntVar(&o.Load.Clients, "clients", 64, "concurrent requesters")
	f.DurationVar(&o.Load.Duration, "duration", 20*time.Second, "length of the main load")
	f.IntVar(&o.Load.Commands, "commands", 0, "stop the main load after this many commands instead of --duration")
	f.Uint64Var(&o.Load.Seed, "seed", 1, "random seed of the mix")
	f.StringVar(&o.Load.Mix, "mix", bench.MixFull, "requests of the load: full (every command, 20 % queries, a third rejected) or allocate-release (each client allocates a few credits, then releases them: nearly all accepted)")
	f.DurationVar(&o.RawFor, "raw-for", 3*time.Second, "length of each raw JetStream baseline")
	f.DurationVar(&o.LagFor, "lag-for", 10*time.Second, "length of the projection-lag phase (half the clients)")
	f.Uint64Var(&o.RestartEvents, "restart-events", 0, "top the store up to this many events and time a restart (embedded only; e.g. 1000000)")
	f.IntVar(&o.MaxInflight, "max-inflight", 0, "appends the embedded ledger's writer keeps in flight (0: default)")
	f.DurationVar(&o.Linger, "linger", 0, "the embedded ledger's group-commit linger (0: default, negative: off)")
	f.IntSliceVar(&o.CPUOf, "cpu-of", nil, "with --nats-url: process ids of the ledger nodes (and servers) on this machine whose CPU the figures count, so that the run has a CPU bound as an embedded one has")
	f.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (ledger and load) to this file")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile at the end of the run (go tool pprof -sample_index=alloc_space: what the whole run allocated)")
	// The production configuration: serve logs at info too, so the bench measures what runs.
	f.StringVar(&logLevel, "log-level", "info", "log level of the embedded ledger (serve's default, so the bench measures production)")
	return cmd
}

// writeHeapProfile writes the heap profile, whose alloc_space and alloc_objects cover every
// allocation since the process started.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
