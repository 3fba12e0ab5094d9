package jetstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// olderBuildStreamConfig is the LEDGER stream as a build from before partitions created it:
// account subjects, no metadata (Open adds the fence subject and the partition count).
func olderBuildStreamConfig() jetstream.StreamConfig {
	c := jetstore.StreamConfig(1)
	c.Subjects = []string{jetstore.SubjectAll}
	c.Metadata = nil
	return c
}

func TestSubjects(t *testing.T) {
	part := jetstore.Subjects{Partitions: 64, Partitioned: true}
	acct := jetstore.Subjects{Partitions: 64}
	p := ledger.PartitionOf("acme", 64)
	own := "ledger.events." + strconv.Itoa(p) + ".acme"
	other := "ledger.events." + strconv.Itoa((p+1)%64) + ".acme"
	assert.Equal(t, own, part.Of("acme"))
	assert.Equal(t, "ledger.events.acme", acct.Of("acme"))
	assert.Equal(t, "ledger.events."+strconv.Itoa(p)+".*", part.PartitionFilter(p))
	assert.Empty(t, acct.PartitionFilter(p), "account subjects have no partition filter")
	for _, tc := range []struct {
		name    string
		s       jetstore.Subjects
		subject string
		want    string // "" when not one of the store's event subjects
	}{
		{"partitioned: the account's partition", part, own, "acme"},
		{"partitioned: another partition", part, other, ""},
		{"partitioned: an account subject", part, "ledger.events.acme", ""},
		{"partitioned: a leading zero", part, "ledger.events.0" + strconv.Itoa(p) + ".acme", ""},
		{"partitioned: a sign", part, "ledger.events.+" + strconv.Itoa(p) + ".acme", ""},
		{"partitioned: three tokens", part, own + ".x", ""},
		{"partitioned: an empty account", part, "ledger.events." + strconv.Itoa(p) + ".", ""},
		{"partitioned: a fence", part, "ledger.fence.3", ""},
		{"account: the account's subject", acct, "ledger.events.acme", "acme"},
		{"account: a partitioned subject", acct, own, ""},
		{"account: empty", acct, "ledger.events.", ""},
		{"account: another stream's", acct, "ledger.rejections.acme", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.s.AccountOf(tc.subject)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want != "", ok)
		})
	}
}

// FuzzParseEventSubject: subjects come from the stream, which an operator with rights on it
// could fill with anything. The parse never panics, and what it accepts builds back to the
// same subject.
func FuzzParseEventSubject(f *testing.F) {
	for _, s := range []string{"ledger.events.acme", "ledger.events.17.acme", "ledger.events.017.acme", "ledger.events..", "ledger.events.4096.a", "ledger.events.-1.a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		e, ok := jetstore.ParseEventSubject(subject)
		if !ok {
			return
		}
		require.NotEmpty(t, e.AccountID)
		require.NotContains(t, e.AccountID, ".")
		back := jetstore.SubjectPrefix + e.AccountID
		if e.Partitioned {
			require.True(t, e.Partition >= 0 && e.Partition < ledger.MaxPartitions)
			back = jetstore.SubjectPrefix + strconv.Itoa(e.Partition) + "." + e.AccountID
		}
		require.Equal(t, subject, back)
	})
}

// A store this build creates files events under partitioned subjects, and refuses what an older
// build would write (an account subject) and an older build itself (which requires the stream
// to capture ledger.events.>); a store an older build created keeps account subjects.
func TestStreamSubjectsByTheBuildThatCreatedIt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	write := func(t *testing.T, st *jetstore.Store) uint64 {
		pos, err := st.Append(ctx, []ledger.Record{{AccountID: "acme", Data: []byte(`{"version":1}`), Version: 1, CheckVersion: true}})
		require.NoError(t, err)
		return pos[0]
	}
	t.Run("created now", func(t *testing.T) {
		nc, js := bareJetStream(t)
		st, err := jetstore.Open(ctx, nc, jetstore.Config{})
		require.NoError(t, err)
		assert.True(t, st.PartitionsApart())
		pos := write(t, st)
		m, err := js.Stream(ctx, jetstore.StreamName)
		require.NoError(t, err)
		got, err := m.GetMsg(ctx, pos)
		require.NoError(t, err)
		assert.Equal(t, jetstore.DefaultSubjects.Of("acme"), got.Subject)
		assert.NotContains(t, m.CachedInfo().Config.Subjects, jetstore.SubjectAll, "an older build refuses the stream")
		_, err = js.Publish(ctx, "ledger.events.acme", []byte(`{"version":2}`))
		require.Error(t, err, "an account subject is captured by no stream")
	})
	t.Run("created by an older build", func(t *testing.T) {
		nc, js := bareJetStream(t)
		_, err := js.CreateStream(ctx, olderBuildStreamConfig())
		require.NoError(t, err)
		st, err := jetstore.Open(ctx, nc, jetstore.Config{})
		require.NoError(t, err)
		assert.False(t, st.PartitionsApart())
		pos := write(t, st)
		m, err := js.Stream(ctx, jetstore.StreamName)
		require.NoError(t, err)
		got, err := m.GetMsg(ctx, pos)
		require.NoError(t, err)
		assert.Equal(t, "ledger.events.acme", got.Subject)
		_, has := m.CachedInfo().Config.Metadata[jetstore.SubjectsMetadata]
		assert.False(t, has, "the scheme is not changed under an older store")
	})
	t.Run("an unknown scheme is refused", func(t *testing.T) {
		nc, js := bareJetStream(t)
		c := jetstore.StreamConfig(1)
		c.Metadata = map[string]string{jetstore.SubjectsMetadata: "by-day"}
		_, err := js.CreateStream(ctx, c)
		require.NoError(t, err)
		_, err = jetstore.Open(ctx, nc, jetstore.Config{})
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), "by-day"), err.Error())
	})
}

// A stream with partitioned subjects is refused when any subject it captures takes an account
// subject (ledger.events.<account_id>) too, however it is written.
func TestPartitionedStreamCapturesNoAccountSubject(t *testing.T) {
	for extra, takes := range map[string]bool{
		">": true, "ledger.>": true, "ledger.*.*": true, "*.events.>": true, "ledger.events.*": true,
		"ledger.events.acme": true, "ledger.events.>": true,
		"ledger.events.*.*.*": false, "ledger.fence.>": false, "ledger.events.*.x": false, "other.>": false, "ledger.*": false,
	} {
		c := jetstore.StreamConfig(1)
		c.Subjects = append(c.Subjects, extra)
		err := jetstore.CheckStreamConfig(c)
		if takes {
			assert.ErrorContains(t, err, "ledger.events.<account_id>", extra)
		} else {
			assert.NoError(t, err, extra)
		}
	}
}

// Subjects.Of runs for every appended record: one allocation, as the account subject's.
func TestSubjectOfAllocatesOnce(t *testing.T) {
	acct := "acct-0123456789"
	got := testing.AllocsPerRun(100, func() { _ = jetstore.DefaultSubjects.Of(acct) })
	assert.LessOrEqual(t, got, 1.0)
}
