package jetstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errCodeNoMessage is JetStream's "no message found".
const errCodeNoMessage = 10037

// leaderLast reads the last message on subject from the stream's leader (STREAM.MSG.GET, not a
// direct get); seq is 0 when there is none.
func leaderLast(ctx context.Context, nc *nats.Conn, stream, subject string) (uint64, []byte, error) {
	m, _, err := leaderGet(ctx, nc, stream, map[string]any{"last_by_subj": subject})
	return m.seq, m.data, err
}

// leaderAt reads the message at seq from the stream leader (a message get, not a direct get that
// any replica may answer); found is false when the leader holds none there.
func leaderAt(ctx context.Context, nc *nats.Conn, stream string, seq uint64) (data []byte, found bool, err error) {
	m, found, err := leaderGet(ctx, nc, stream, map[string]any{"seq": seq})
	return m.data, found, err
}

// leaderMsg is one message as a message get answers it.
type leaderMsg struct {
	seq     uint64
	subject string
	data    []byte
}

// leaderGet asks the stream leader for one message (a JetStream message get request body).
func leaderGet(ctx context.Context, nc *nats.Conn, stream string, req map[string]any) (leaderMsg, bool, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return leaderMsg{}, false, err
	}
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return leaderMsg{}, false, err
	}
	var resp struct {
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Data    []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return leaderMsg{}, false, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == errCodeNoMessage:
		return leaderMsg{}, false, nil
	case resp.Error != nil:
		return leaderMsg{}, false, resp.Error
	case resp.Message == nil:
		return leaderMsg{}, false, errors.New("empty answer")
	}
	return leaderMsg{seq: resp.Message.Seq, subject: resp.Message.Subject, data: resp.Message.Data}, true, nil
}

// sharedSaveTimeout bounds one snapshot save on a shared stream: a save whose acknowledgements
// are lost while a peer hands over leadership (nodes stopping together) would otherwise wait out
// the caller's whole deadline. A snapshot is only a restart shortcut; a lost one costs a replay.
const sharedSaveTimeout = 15 * time.Second

// ForNode returns the same bucket with every name prefixed by node, so several processes that
// share the stream keep their own snapshots (each is a valid prefix of the one stream; separate
// names keep them from writing one object at once), and with saves bounded by sharedSaveTimeout.
func (s *Snapshots) ForNode(node string) *Snapshots {
	c := *s
	c.prefix, c.saveTimeout = node+"/", sharedSaveTimeout
	return &c
}

// WithSaveTimeout returns the same bucket with every save bounded by d: a save to a bucket that
// has lost its quorum (the other nodes are gone) must not hold up a node's stop.
func (s *Snapshots) WithSaveTimeout(d time.Duration) *Snapshots {
	c := *s
	c.saveTimeout = d
	return &c
}

// LeaderInfo reads the stream's info from its leader. A replica that has no leader for the
// stream (an election, or the other replicas out of reach) answers STREAM.INFO too, from its own
// store, which may lack writes the leader acknowledged (nats-server, jsStreamInfoRequest); its
// answer names no leader. Such an answer is asked again (directRetries times, directRetryWait
// apart), then refused: a head read from it would end a read early without a sign
// (TestHeadsAreNotReadFromALeaderlessReplica). A request nobody answers (the leader has just
// died and no replica answers yet) is asked again after infoAttemptTimeout, within ctx.
func LeaderInfo(ctx context.Context, st jetstream.Stream) (*jetstream.StreamInfo, error) {
	return leaderInfo(ctx, st.Info)
}

// infoAttemptTimeout bounds one STREAM.INFO request of LeaderInfo. While a stream elects a new
// leader (4-9 s in nats-server) its info requests go unanswered; one request given the caller's
// whole deadline (10 s for a takeover's fence read) waited it out even when the election had ended
// seconds before: a takeover after kill -9 of the node leading LEDGER and the lease bucket took
// 18 s, 10 of them in one fence read (docs/bench/takeover.sh).
const infoAttemptTimeout = 2 * time.Second

func leaderInfo(ctx context.Context, info func(context.Context, ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error)) (*jetstream.StreamInfo, error) {
	for try := 0; ; try++ {
		actx, cancel := context.WithTimeout(ctx, infoAttemptTimeout)
		in, err := info(actx)
		cancel()
		if err != nil {
			if _, bounded := ctx.Deadline(); bounded && ctx.Err() == nil &&
				(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
				continue // unanswered: asked again while the caller's deadline allows
			}
			return nil, err
		}
		if in.Cluster == nil || in.Cluster.Leader != "" {
			return in, nil
		}
		if try >= directRetries {
			return nil, fmt.Errorf("stream %s: answered only by a replica without a leader", in.Config.Name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(directRetryWait):
		}
	}
}
