package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/server"
)

func newLogger(level string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: must be debug, info, warn or error", level)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

func serveCmd() *cobra.Command {
	var cfg server.Config
	var logLevel, pprofListen string
	var pf prodFlags // auth, TLS, cluster: production.go
	cmd := &cobra.Command{
		Use:     "serve",
		Short:   "Run the ledger: embedded NATS+JetStream, command service, projectors, queries, HTTP",
		Example: "  creditledger serve --data-dir ./data --nats-listen 127.0.0.1:4222 --http-listen 127.0.0.1:8080",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logLevel, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cfg.Log = log
			if err := pf.apply(&cfg, log); err != nil {
				return err
			}
			if pprofListen != "" {
				prof, err := startProfileServer(pprofListen, log)
				if err != nil {
					return err
				}
				defer prof.Close()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			srv, err := server.Start(ctx, cfg)
			if err != nil {
				return err
			}
			log.Info().Str("nats_url", srv.ClientURL()).Str("http", srv.HTTPAddr()).Uint64("position", srv.Head()).
				Dur("startup", time.Since(start)).Msg("creditledger ready")
			<-ctx.Done()
			log.Info().Msg("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			log.Info().Msg("stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "./data", "directory of the embedded JetStream store")
	f.StringVar(&cfg.NATSListen, "nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "use this NATS/JetStream deployment instead of embedding one")
	f.StringVar(&cfg.HTTPListen, "http-listen", "127.0.0.1:8080", "address of the HTTP API")
	f.IntVar(&cfg.MaxInflight, "max-inflight", 0, "group-commit appends in flight at once (0: default)")
	f.DurationVar(&cfg.Linger, "linger", 0, "longest group-commit wait for the commands an append's replies set off (0: default 5ms, negative: off)")
	f.IntVar(&cfg.Replicas, "replicas", 0, "replicas of the LEDGER stream when it is created (0: 3 in a cluster of 3+ nodes, else 1)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&pprofListen, "pprof-listen", "", "serve Go's profiles (/debug/pprof/) on this address, without authentication: loopback only (default: off)")
	addCheckpointFlags(f, &cfg.Checkpoints)
	pf.add(f)
	return cmd
}
