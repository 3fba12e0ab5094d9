package audit_test

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// acmeChain is account acme's versions 1 to n, sealed and chained (RFC 8785 rule).
func acmeChain(t *testing.T, n int) [][]byte {
	t.Helper()
	return accountChain(t, "acme", n)
}

// accountChain is an account's versions 1 to n, sealed and chained (RFC 8785 rule).
func accountChain(t *testing.T, account string, n int) [][]byte {
	t.Helper()
	prev := events.ZeroHash
	at := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	var out [][]byte
	for v := uint64(1); v <= uint64(n); v++ {
		raw, err := events.EncodePayload(events.AutoRenewSet{LicenseID: "L-1", Enabled: v%2 == 0})
		require.NoError(t, err)
		e := events.Envelope{EventID: fmt.Sprintf("ev-%d", v), Type: events.AutoRenewSet{}.EventType(), SchemaVersion: 1,
			AccountID: account, Version: v, OccurredAt: at.Add(time.Duration(v) * time.Second), CommandID: fmt.Sprintf("c-%d", v),
			Payload: raw, PrevHash: prev}
		data, err := e.SealEncode()
		require.NoError(t, err)
		prev = e.Hash
		out = append(out, data)
	}
	return out
}

// An event is checked against its own subject: in a store whose subjects are known, exactly the
// subject the store files the account's events under (the scheme, and in a partitioned store the
// account's partition, written without sign or leading zeros); from the stored lines alone, a
// subject naming the account in the scheme of the first event. acme is partition 47 of 64 and 7
// of 8 (FNV-1a 32 of "acme" is 1174237615: docs/FORMAT.md's worked example).
func TestEventIsCheckedAgainstItsSubject(t *testing.T) {
	t.Parallel()
	part64 := &jetstore.Subjects{Partitions: 64, Partitioned: true}
	part8 := &jetstore.Subjects{Partitions: 8, Partitioned: true}
	old64 := &jetstore.Subjects{Partitions: 64}
	cases := []struct {
		name  string
		store *jetstore.Subjects // nil: not known (stored lines alone)
		// subjects are acme's versions 1, 2 ... stored under them, in order.
		subjects []string
		// wrong is the index of the event reported wrong_subject (-1: none); names is the
		// subject its reason must name as the account's.
		wrong int
		names string
	}{
		{"partitioned store: the account's partition", part64, []string{"ledger.events.47.acme", "ledger.events.47.acme"}, -1, ""},
		{"partitioned store: another partition", part64, []string{"ledger.events.47.acme", "ledger.events.46.acme"}, 1, "ledger.events.47.acme"},
		{"partitioned store: a leading zero", part64, []string{"ledger.events.047.acme"}, 0, "ledger.events.47.acme"},
		{"partitioned store: a sign", part64, []string{"ledger.events.+47.acme"}, 0, "ledger.events.47.acme"},
		{"partitioned store: 111, the partition modulo 64 but no partition", part64, []string{"ledger.events.111.acme"}, 0, "ledger.events.47.acme"},
		{"partitioned store: the account subject of an older store", part64, []string{"ledger.events.acme"}, 0, "ledger.events.47.acme"},
		{"partitioned store: another account's subject", part64, []string{"ledger.events.14.globex"}, 0, "ledger.events.47.acme"},
		{"partitioned store: an account subject after good ones", part64, []string{"ledger.events.47.acme", "ledger.events.acme"}, 1, "ledger.events.47.acme"},
		{"partitioned store of 8: the account's partition", part8, []string{"ledger.events.7.acme"}, -1, ""},
		{"partitioned store of 8: its partition among 64", part8, []string{"ledger.events.47.acme"}, 0, "ledger.events.7.acme"},
		{"older store: the account subject", old64, []string{"ledger.events.acme", "ledger.events.acme"}, -1, ""},
		{"older store: the partitioned subject", old64, []string{"ledger.events.acme", "ledger.events.47.acme"}, 1, "ledger.events.acme"},
		{"older store: another account's subject", old64, []string{"ledger.events.globex"}, 0, "ledger.events.acme"},
		{"unknown store: partitioned subjects", nil, []string{"ledger.events.47.acme", "ledger.events.47.acme"}, -1, ""},
		{"unknown store: account subjects", nil, []string{"ledger.events.acme", "ledger.events.acme"}, -1, ""},
		{"unknown store: an account subject after a partitioned one", nil, []string{"ledger.events.47.acme", "ledger.events.acme"}, 1, ""},
		{"unknown store: a partitioned subject after an account one", nil, []string{"ledger.events.acme", "ledger.events.47.acme"}, 1, ""},
		{"unknown store: a leading zero", nil, []string{"ledger.events.047.acme"}, 0, ""},
		{"unknown store: another account's subject", nil, []string{"ledger.events.47.globex"}, 0, ""},
		// Without the partition count p cannot be checked: the stream's config, or verify.py's
		// PARTITIONS argument, is what tells 46 from 47.
		{"unknown store: another partition passes", nil, []string{"ledger.events.46.acme"}, -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			chain := audit.NewChain()
			if c.store != nil {
				chain.SetSubjects(*c.store)
			}
			data := acmeChain(t, len(c.subjects))
			for i, subject := range c.subjects {
				fs := chain.Apply(audit.Message{Position: uint64(i + 1), Subject: subject, Data: data[i]})
				if i != c.wrong {
					assert.Empty(t, fs, "%s", subject)
					continue
				}
				require.Len(t, fs, 1, "%s", subject)
				assert.Equal(t, audit.Finding{Kind: audit.KindWrongSubject, Position: uint64(i + 1), AccountID: "acme",
					Version: uint64(i + 1), Reason: fs[0].Reason}, fs[0])
				assert.Contains(t, fs[0].Reason, fmt.Sprintf("%q", subject))
				if c.names != "" {
					assert.Contains(t, fs[0].Reason, fmt.Sprintf("not the account's subject %q", c.names))
				}
			}
			wantHead := uint64(len(c.subjects))
			if c.wrong >= 0 {
				wantHead = uint64(c.wrong) // the event under a foreign subject is not the account's head
			}
			leaf, _, ok := chain.Head("acme")
			assert.Equal(t, wantHead, leaf.Version)
			assert.Equal(t, wantHead > 0, ok)
		})
	}
}

// SetSubjects sets the partition count ownership records must name, as SetPartitions does.
func TestSetSubjectsChecksOwnershipRecordsPartitionCount(t *testing.T) {
	t.Parallel()
	chain := audit.NewChain()
	chain.SetSubjects(jetstore.Subjects{Partitions: 65, Partitioned: true})
	fs := chain.Apply(audit.Message{Position: 1, Subject: jetstore.FenceSubject(17), Data: []byte(vectorFence)})
	require.Len(t, fs, 1)
	assert.Equal(t, audit.KindForeignFence, fs[0].Kind)
	assert.Contains(t, fs[0].Reason, "the record counts 64 partitions, the stream 65")
}

// An event stored under another partition's subject of a store this build created (the stream
// captures ledger.events.*.*, so anyone with publish rights can put it there) is no event of its
// account: the account's owner never reads it and the live projector parks it. audit verify
// reports it (wrong_subject) although it is correctly sealed and chained, and the events after
// it verify; the rebuild parks it as the live projector does; the service refuses to sign the
// history.
func TestVerifyFindsAnEventUnderAnotherPartition(t *testing.T) {
	t.Parallel()
	l := testledger.Start(t)
	generate(t, l, "g", 2, 1)
	_, src := connect(t, l.ClientURL())
	subjects, err := src.Subjects()
	require.NoError(t, err)
	require.True(t, subjects.Partitioned, "a store this build creates has partitioned subjects")
	var g000 []audit.Message
	_, err = src.Scan(ctxT(t), audit.Filter{AccountID: "g000"}, func(m audit.Message) error {
		g000 = append(g000, m)
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, g000)
	assert.Equal(t, fmt.Sprintf("ledger.events.%d.g000", ledger.PartitionOf("g000", subjects.Partitions)), g000[0].Subject)

	// g000's first event (a purchase) re-sealed as zz's first: sound in every byte, but filed
	// under the partition after zz's.
	forged := reencode(t, g000[0], true, func(e *events.Envelope) { e.AccountID, e.EventID = "zz", "forged-zz-1" })
	p := (ledger.PartitionOf("zz", subjects.Partitions) + 1) % subjects.Partitions
	forger, err := nats.Connect(l.ClientURL(), nats.Name("forger"))
	require.NoError(t, err)
	defer forger.Close()
	js, err := jetstream.New(forger)
	require.NoError(t, err)
	ack, err := js.Publish(ctxT(t), fmt.Sprintf("%s%d.zz", jetstore.SubjectPrefix, p), forged.Data)
	require.NoError(t, err)
	send(t, l, nil, "allocate_credits", map[string]any{"account_id": "g001", "feature": "container_security", "credits": "1"})

	rep, err := audit.Verify(ctxT(t), src, audit.VerifyOptions{PublicKeys: []ed25519.PublicKey{ledgerKey(t, l)}})
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1, "%v", rep.Findings)
	f := rep.Findings[0]
	assert.Equal(t, audit.Finding{Kind: audit.KindWrongSubject, Position: ack.Sequence, AccountID: "zz", Version: 1, Reason: f.Reason}, f)
	assert.Contains(t, f.Reason, fmt.Sprintf("not the account's subject %q", subjects.Of("zz")))
	assert.Empty(t, rep.Warnings)

	rb, err := audit.Rebuild(ctxT(t), src, l.Client, ledger.DefaultCatalogue())
	require.NoError(t, err)
	assert.True(t, rb.OK, "%v", rb.Differences)
	assert.Equal(t, 1, rb.Parked, "parked as the live projector parks it")

	require.Eventually(t, func() bool {
		msg, err := l.NC.Request(audit.CheckpointRequestSubject, nil, 10*time.Second)
		return err == nil && strings.Contains(string(msg.Data), "fails verification") && strings.Contains(string(msg.Data), "wrong_subject")
	}, 20*time.Second, 50*time.Millisecond)
}
