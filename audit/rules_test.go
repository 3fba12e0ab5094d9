package audit_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/events"
)

// history builds a stream of accounts*versions events, the accounts interleaved, each event
// sealed under the rule rule(version) chooses and chained to its predecessor: legacy, new, or
// a store that switched rules part-way.
func ruledHistory(t *testing.T, accounts, versions int, rule func(v uint64) string) []audit.Message {
	t.Helper()
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	prev := map[string]string{}
	var out []audit.Message
	for v := uint64(1); v <= uint64(versions); v++ {
		for a := range accounts {
			acc := fmt.Sprintf("r%02d", a)
			if prev[acc] == "" {
				prev[acc] = events.ZeroHash
			}
			p := events.CreditsAllocated{Feature: "file_security <&>"}
			p.Credits = p.Credits.Add(p.Credits) // zero
			raw, err := events.EncodePayload(p)
			require.NoError(t, err)
			raw = json.RawMessage(strings.Replace(string(raw), `"credits":"0"`, fmt.Sprintf(`"credits":"%d"`, v), 1))
			e := events.Envelope{EventID: fmt.Sprintf("ev-%s-%d", acc, v), Type: p.EventType(), SchemaVersion: 1,
				AccountID: acc, Version: v, OccurredAt: at.Add(time.Duration(len(out)) * time.Second),
				CommandID: fmt.Sprintf("c-%s-%d", acc, v), Payload: raw, PrevHash: prev[acc]}
			if rule(v) == events.HashRuleLegacy {
				require.NoError(t, e.SealLegacy())
			} else {
				require.NoError(t, e.Seal())
			}
			data, err := events.Encode(&e)
			require.NoError(t, err)
			prev[acc] = e.Hash
			out = append(out, audit.Message{Position: uint64(len(out) + 1), Subject: "ledger.events." + acc, Data: data})
		}
	}
	return out
}

// reseal edits a message's envelope and seals it again under the rule it had.
func reseal(t *testing.T, m audit.Message, edit func(*events.Envelope)) audit.Message {
	t.Helper()
	ev, err := events.Decode(m.Data)
	require.NoError(t, err)
	e := ev.Envelope
	edit(&e)
	if ev.HashRule == events.HashRuleLegacy {
		require.NoError(t, e.SealLegacy())
	} else {
		require.NoError(t, e.Seal())
	}
	m.Data, err = events.Encode(&e)
	require.NoError(t, err)
	return m
}

func renumber(msgs []audit.Message) []audit.Message {
	for i := range msgs {
		msgs[i].Position = uint64(i + 1)
	}
	return msgs
}

// Tampered, re-ordered, dropped and inserted events are found and named (account, version,
// position) under the legacy rule, under RFC 8785, and in a store that switched between them.
func TestChainFindsTamperingUnderEveryHashRule(t *testing.T) {
	t.Parallel()
	rules := map[string]func(uint64) string{
		"legacy":  func(uint64) string { return events.HashRuleLegacy },
		"rfc8785": func(uint64) string { return events.HashRuleJCS },
		"mixed": func(v uint64) string {
			return map[bool]string{true: events.HashRuleLegacy, false: events.HashRuleJCS}[v <= 2]
		},
	}
	// With 3 accounts interleaved, account r01's version v is at position 3(v-1)+2.
	at := func(v uint64) uint64 { return 3*(v-1) + 2 }
	cases := []struct {
		name string
		edit func([]audit.Message) []audit.Message
		kind string
		// version and position of the first finding (account r01).
		version, position uint64
	}{
		{"untouched", func(m []audit.Message) []audit.Message { return m }, "", 0, 0},
		{"edited, hash kept", func(m []audit.Message) []audit.Message {
			ev, _ := events.Decode(m[at(3)-1].Data)
			m[at(3)-1].Data = []byte(strings.Replace(string(m[at(3)-1].Data), `"credits":"3"`, `"credits":"30"`, 1))
			require.NotEqual(t, ev.Hash, "")
			return m
		}, audit.KindHashMismatch, 3, at(3)},
		{"edited and re-hashed", func(m []audit.Message) []audit.Message {
			m[at(2)-1] = reseal(t, m[at(2)-1], func(e *events.Envelope) {
				e.Payload = json.RawMessage(strings.Replace(string(e.Payload), `"credits":"2"`, `"credits":"20"`, 1))
			})
			return m
		}, audit.KindBrokenLink, 3, at(3)},
		{"re-ordered within the account", func(m []audit.Message) []audit.Message {
			m[at(2)-1].Data, m[at(3)-1].Data = m[at(3)-1].Data, m[at(2)-1].Data
			return m
		}, audit.KindVersionGap, 3, at(2)},
		{"dropped, the rest renumbered", func(m []audit.Message) []audit.Message {
			return renumber(append(m[:at(2)-1:at(2)-1], m[at(2):]...))
		}, audit.KindVersionGap, 3, at(3) - 1},
		{"inserted: a stored event published again", func(m []audit.Message) []audit.Message {
			dup := m[at(1)-1]
			return renumber(append(append(m[:at(3):at(3)], dup), m[at(3):]...))
		}, audit.KindVersionRepeat, 1, at(3) + 1},
		{"inserted: a forged next version", func(m []audit.Message) []audit.Message {
			forged := reseal(t, m[at(2)-1], func(e *events.Envelope) { e.EventID = "forged" })
			return renumber(append(append(m[:at(2):at(2)], forged), m[at(2):]...))
		}, audit.KindVersionRepeat, 2, at(2) + 1},
	}
	for rname, rule := range rules {
		for _, c := range cases {
			t.Run(rname+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				msgs := c.edit(ruledHistory(t, 3, 4, rule))
				chain := audit.NewChain()
				var fs []audit.Finding
				for _, m := range msgs {
					fs = append(fs, chain.Apply(m)...)
				}
				if c.kind == "" {
					assert.Empty(t, fs)
					return
				}
				require.NotEmpty(t, fs)
				assert.Equal(t, c.kind, fs[0].Kind, "%v", fs)
				assert.Equal(t, "r01", fs[0].AccountID, "%v", fs)
				assert.Equal(t, c.version, fs[0].Version, "%v", fs)
				assert.Equal(t, c.position, fs[0].Position, "%v", fs)
			})
		}
	}
}

// A store that switched rules part-way verifies as a whole: legacy events keep their hashes and
// the first new-rule event chains onto the last legacy one.
func TestMixedRuleHistoryVerifies(t *testing.T) {
	t.Parallel()
	msgs := ruledHistory(t, 2, 4, func(v uint64) string {
		if v <= 2 {
			return events.HashRuleLegacy
		}
		return events.HashRuleJCS
	})
	chain := audit.NewChain()
	for _, m := range msgs {
		require.Empty(t, chain.Apply(m))
	}
	first, err := events.Decode(msgs[0].Data)
	require.NoError(t, err)
	last, err := events.Decode(msgs[len(msgs)-1].Data)
	require.NoError(t, err)
	assert.Equal(t, events.HashRuleLegacy, first.HashRule)
	assert.Equal(t, events.HashRuleJCS, last.HashRule)
}
