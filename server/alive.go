package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/creditledger/creditledger/partition"
)

// Each node answers liveness probes on an internal subject that names it, over NATS core: the
// probes work while the lease bucket (a JetStream stream) elects a leader, which is when the
// keeper needs them (partition.Config.Probe: the while after a lease-store gap ends once every
// node from before it is back or proven down). A request there is answered with an empty reply
// by the node's responder, into the responders' own inbox only; "no responders" proves that no
// server of the cluster knows a subscription of the node.

// aliveSubjectPrefix starts the liveness subjects (authz.SubjectNode grants them).
const aliveSubjectPrefix = "ledger.node"

// AliveSubject is the subject node answers liveness probes on: ledger.node.<token>.alive, where
// token is the node's name when it is one plain subject token, else a hash of it (nodeToken).
func AliveSubject(node string) string {
	return aliveSubjectPrefix + "." + nodeToken(node) + ".alive"
}

// nodeToken is a subject-safe token for a node name: the name itself when it has only letters,
// digits, '-' and '_' (a --server-name, usually), else "h" and 32 hex digits of its SHA-256 (a
// host name with dots, say). Two names on one token only make probes answer up for both, which
// keeps the while: the safe side.
func nodeToken(node string) string {
	plain := node != ""
	for _, r := range node {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			plain = false
			break
		}
	}
	if plain {
		return node
	}
	sum := sha256.Sum256([]byte(node))
	return "h" + hex.EncodeToString(sum[:16])
}

// inboxPrefix is the prefix of nc's reply subjects (a custom one, or nats.go's default).
func inboxPrefix(nc *nats.Conn) string {
	if p := nc.Opts.InboxPrefix; p != "" {
		return p
	}
	return strings.TrimSuffix(nats.InboxPrefix, ".")
}

// serveAlive answers liveness probes for node on nc (the responder's connection) until the
// subscription ends, at the latest when nc closes. Only a request whose reply subject is in nc's
// own inbox prefix is answered: another node's probe, sent by the same identity (as on
// ledger.owner.>); anything else is ignored.
func serveAlive(nc *nats.Conn, node string) (*nats.Subscription, error) {
	inbox := inboxPrefix(nc) + "."
	sub, err := nc.Subscribe(AliveSubject(node), func(m *nats.Msg) {
		if !strings.HasPrefix(m.Reply, inbox) {
			return
		}
		_ = m.Respond(nil)
	})
	if err != nil {
		return nil, fmt.Errorf("liveness subject: %w", err)
	}
	return sub, nil
}

// probeAlive is partition.Config.Probe over nc (the responder's connection): a reply is up, "no
// responders" is down (the server knows no subscription of the node: killed, or its connection
// dropped), anything else (a timeout: a paused node, or one cut off whose connection the server
// still holds) is unknown. ctx bounds the request.
func probeAlive(nc *nats.Conn) func(context.Context, string) (partition.Liveness, error) {
	return func(ctx context.Context, node string) (partition.Liveness, error) {
		_, err := nc.RequestWithContext(ctx, AliveSubject(node), nil)
		switch {
		case err == nil:
			return partition.NodeUp, nil
		case errors.Is(err, nats.ErrNoResponders):
			return partition.NodeDown, nil
		}
		return partition.NodeUnknown, err
	}
}
