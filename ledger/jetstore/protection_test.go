package jetstore_test

import (
	"context"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger/jetstore"
)

// bareJetStream starts a plain nats-server with JetStream on a temporary store.
func bareJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// TestOpenRefusesAWeakerStream covers "Store protection": the service refuses to start against
// a LEDGER stream whose settings are weaker than required, naming the setting and the fix.
func TestOpenRefusesAWeakerStream(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		weaken func(*jetstream.StreamConfig)
		says   string
	}{
		{"memory storage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, "file storage"},
		{"deletes allowed", func(c *jetstream.StreamConfig) { c.DenyDelete = false }, "deny_delete"},
		{"purge allowed", func(c *jetstream.StreamConfig) { c.DenyPurge = false }, "deny_purge"},
		{"max age", func(c *jetstream.StreamConfig) { c.MaxAge = 90 * 24 * time.Hour }, "max_age"},
		{"message TTL", func(c *jetstream.StreamConfig) { c.AllowMsgTTL = true }, "allow_msg_ttl"},
		{"message limit", func(c *jetstream.StreamConfig) { c.MaxMsgs = 1_000_000 }, "limits"},
		{"byte limit", func(c *jetstream.StreamConfig) { c.MaxBytes = 1 << 30 }, "limits"},
		{"per-subject limit", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 100 }, "limits"},
		{"no atomic batches", func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false }, "allow_atomic"},
		{"other subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"ledger.events.*.x"} }, "does not capture"},
		// Partitioned subjects (the metadata says so) on a stream that captures account subjects
		// too: an older build opens it and appends an account's events under a second subject,
		// beside the version checks of the first.
		{"partitioned, capturing account subjects", func(c *jetstream.StreamConfig) {
			c.Subjects = []string{jetstore.SubjectAll, jetstore.FenceAll}
		}, "ledger.events.<account_id>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nc, js := bareJetStream(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := jetstore.StreamConfig(1)
			c.weaken(&cfg)
			_, err := js.CreateStream(ctx, cfg)
			require.NoError(t, err)
			_, err = jetstore.Open(ctx, nc, jetstore.Config{})
			require.Error(t, err, "the ledger must refuse a stream with %s", c.name)
			assert.Contains(t, err.Error(), c.says)
			assert.Contains(t, err.Error(), "nats stream edit LEDGER", "the message says how to fix it")
			assert.Error(t, jetstore.CheckStreamConfig(cfg))
		})
	}
}

func TestOpenCreatesAProtectedStream(t *testing.T) {
	t.Parallel()
	nc, js := bareJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	s, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	got := s.CachedInfo().Config
	require.NoError(t, jetstore.CheckStreamConfig(got))
	assert.True(t, got.DenyDelete)
	assert.True(t, got.DenyPurge)
	assert.Zero(t, got.MaxAge)
	assert.False(t, got.AllowMsgTTL)
	assert.Equal(t, jetstream.FileStorage, got.Storage)

	_, err = js.Publish(ctx, jetstore.DefaultSubjects.Of("a"), []byte("{}"))
	require.NoError(t, err)
	assert.Error(t, s.DeleteMsg(ctx, 1), "the server itself refuses a delete")
	assert.Error(t, s.Purge(ctx), "and a purge")
	_, err = jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err, "an existing protected stream is accepted")
}

// TestOpenAddsTheFenceSubjectToAnOlderStream: a store created before partition fences captured
// only ledger.events.>; the new build adds ledger.fence.> at open and keeps every event.
func TestOpenAddsTheFenceSubjectToAnOlderStream(t *testing.T) {
	t.Parallel()
	nc, js := bareJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, olderBuildStreamConfig())
	require.NoError(t, err)
	_, err = js.Publish(ctx, "ledger.events.a", []byte("{}"))
	require.NoError(t, err)
	_, err = js.Publish(ctx, jetstore.FenceSubject(3), []byte("{}"))
	require.Error(t, err, "the older stream does not capture fences")

	_, err = jetstore.Open(ctx, nc, jetstore.Config{})
	require.NoError(t, err)
	s, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{jetstore.SubjectAll, jetstore.FenceAll}, s.CachedInfo().Config.Subjects)
	assert.EqualValues(t, 1, s.CachedInfo().State.Msgs, "the event stays")
	ack, err := js.Publish(ctx, jetstore.FenceSubject(3), []byte("{}"))
	require.NoError(t, err)
	assert.EqualValues(t, 2, ack.Sequence)
}
