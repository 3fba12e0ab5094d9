package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"

	"github.com/creditledger/creditledger/auditread"
	"github.com/creditledger/creditledger/authz"
	"github.com/creditledger/creditledger/metrics"
)

// AuditReadConfig bounds the auditors' direct gets and stream infos this node serves
// (auditread); zero values are auditread's defaults: batches of at most 1,000 messages and 4 MiB,
// 16 reads at once, 256 waiting; 2 stream infos at once, 64 waiting.
type AuditReadConfig struct {
	MaxBatch int
	MaxBytes int
	Slots    int
	Queue    int
	// InfoSlots and InfoQueue bound the stream infos (auditread.StartStreamInfo).
	InfoSlots int
	InfoQueue int
}

// auditReads is the relays of the auditors' direct gets and stream infos and the two
// connections they use: the ledger identity takes the requests and asks the JetStream API, the
// responder's identity (which may publish only replies) answers the auditors.
type auditReads struct {
	relay *auditread.Relay
	infos *auditread.Relay
	wire  *auditread.Wire
}

// startAuditReads serves the auditors' direct gets (authz.SubjectAuditRead) and stream infos
// (authz.SubjectAuditInfo) when this process embeds the server with an access config, the only
// case in which the auditors' account maps them to the ledger (authz.ServerAccounts). Towards
// --nats-url the operator's server decides (docs/SECURITY.md).
func (s *Server) startAuditReads() error {
	if s.ns == nil || s.cfg.Auth == nil || s.prod.responder == nil {
		return nil
	}
	u, err := url.Parse(s.ns.ClientURL())
	if err != nil {
		return fmt.Errorf("audit reads: %w", err)
	}
	tc, err := s.auditWireTLS()
	if err != nil {
		return err
	}
	wire, err := auditread.NewWire(func() (net.Conn, error) { return net.Dial("tcp", u.Host) }, tc,
		"creditledger-auditread-answers", authz.ResponderUser, s.prod.responder.Password)
	if err != nil {
		return err
	}
	nc, err := s.dial("creditledger-auditread", false)
	if err != nil {
		return err
	}
	c := s.cfg.AuditReads
	cfg := auditread.Config{
		Streams: s.cfg.Auth.AuditorStreamNames(),
		Limits:  auditread.Limits{MaxBatch: c.MaxBatch, MaxBytes: c.MaxBytes},
		Slots:   c.Slots,
		Queue:   c.Queue,
		Log:     s.cfg.Log.With().Str("component", "auditread").Logger(),
	}
	if s.cfg.Hooks != nil {
		cfg.InSlot = s.cfg.Hooks.InAuditRead
	}
	relay, err := auditread.Start(nc, wire, cfg)
	if err != nil {
		nc.Close()
		return err
	}
	icfg := auditread.Config{Streams: cfg.Streams, Slots: c.InfoSlots, Queue: c.InfoQueue, Log: cfg.Log}
	if s.cfg.Hooks != nil {
		icfg.InSlot = s.cfg.Hooks.InAuditInfo
	}
	infos, err := auditread.StartStreamInfo(nc, wire, icfg)
	if err != nil {
		relay.Stop()
		nc.Close()
		return err
	}
	s.audit = &auditReads{relay: relay, infos: infos, wire: wire}
	s.auditNC = nc
	return nil
}

// auditWireTLS is the client TLS of the answering connection to the embedded server (nil
// without TLS): the same pinned self-TLS as the process's other connections.
func (s *Server) auditWireTLS() (*tls.Config, error) {
	if !s.cfg.TLS.Enabled() {
		return nil, nil
	}
	return selfTLS(s.cfg.TLS)
}

// stopAuditReads ends the relays (running reads finish) and their connections.
func (s *Server) stopAuditReads() {
	if s.audit == nil {
		return
	}
	s.audit.relay.Stop()
	s.audit.infos.Stop()
	s.audit.wire.Close()
	s.auditNC.Close()
}

// AuditReadStats are the counts of the relay of the auditors' direct gets (zero without one).
func (s *Server) AuditReadStats() auditread.Stats {
	if s.audit == nil {
		return auditread.Stats{}
	}
	return s.audit.relay.Stats()
}

// AuditInfoStats are the counts of the relay of the auditors' stream infos (zero without one).
func (s *Server) AuditInfoStats() auditread.Stats {
	if s.audit == nil {
		return auditread.Stats{}
	}
	return s.audit.infos.Stats()
}

// relayCounts are a relay's counts as the metrics read them.
func relayCounts(a auditread.Stats) metrics.AuditReads {
	return metrics.AuditReads{InFlight: a.InFlight, Waiting: a.Waiting, Served: a.Served, Refused: a.Refused, Busy: a.Busy, Dropped: a.Dropped}
}
