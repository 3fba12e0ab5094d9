package server

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/creditledger/creditledger/authz"
)

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// Listen is HOST:PORT of the client port; port 0 or -1 picks a free one.
	Listen string
	// DataDir holds the JetStream store (DataDir/jetstream).
	DataDir string
	// ServerName names the node (defaults to a name derived from the port); a cluster node
	// needs a stable one.
	ServerName string
	// Auth, when set, turns authorization on: only its users connect, each with its role's
	// permissions (security.go).
	Auth *authz.Config
	// TLS secures the client port and the cluster routes (security.go).
	TLS TLSFiles
	// Cluster makes the server a node of a JetStream cluster (cluster.go).
	Cluster ClusterConfig
}

// StartEmbedded starts a NATS server with JetStream on file storage that fsyncs every write
// (sync_interval: always), so an acknowledged append survives kill -9 and power loss.
func StartEmbedded(cfg EmbeddedConfig) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = -1
	}
	opts := &natsserver.Options{
		ServerName:    cfg.ServerName,
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:    true,
		NoSigs:        true,
		NoLog:         true,
		MaxPayload:    1 << 20,
		WriteDeadline: 10 * time.Second,
	}
	if err := applyAccess(opts, cfg); err != nil {
		return nil, err
	}
	if err := applyCluster(opts, cfg); err != nil {
		return nil, err
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats server not ready on %s", cfg.Listen)
	}
	return ns, nil
}
