package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
)

var at = time.Date(2025, time.March, 10, 9, 30, 15, 123456789, time.UTC)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// samplePayloads holds one fully populated payload per event type, keyed by type name.
func samplePayloads() map[string]events.Payload {
	exp := at.AddDate(1, 0, 0)
	return map[string]events.Payload{
		events.TypeLicensePurchased: events.LicensePurchased{
			LicenseID: "lic-1", Source: "azure_marketplace", Credits: dec("1500"), TermMonths: 12, AutoRenew: true,
			ContractStart: at, PurchasedAt: at, ExpiresAt: exp,
		},
		events.TypeLicenseActivated: events.LicenseActivated{LicenseID: "lic-1", ActivatedAt: at},
		events.TypeContractUpgraded: events.ContractUpgraded{
			LicenseID: "lic-1", AdditionalCredits: dec("12.5"), ItemID: "lic-1-u1", ExpiresAt: exp, UpgradedAt: at,
		},
		events.TypeCreditsAllocated: events.CreditsAllocated{Feature: "container_security", Credits: dec("0.0001")},
		events.TypeCreditsReleased:  events.CreditsReleased{Feature: "container_security", Credits: dec("250"), Reason: events.ReleaseSwitchedToPayg},
		events.TypeAutoRenewSet:     events.AutoRenewSet{LicenseID: "lic-1", Enabled: true},
		events.TypePaygContractPurchased: events.PaygContractPurchased{
			ContractID: "payg-1", PurchasedAt: at,
			Rates: map[string]decimal.Decimal{"container_security": dec("0.012"), "file_security": dec("3")},
		},
		events.TypePaygContractActivated: events.PaygContractActivated{ContractID: "payg-1", ActivatedAt: at},
		events.TypeBillingModelSwitched: events.BillingModelSwitched{
			Feature: "file_security", From: "credits", To: "payg", At: at, NextSwitchAllowedAt: at.Add(30 * 24 * time.Hour),
		},
		events.TypeLicenseRenewed: events.LicenseRenewed{LicenseID: "lic-1", PreviousExpiresAt: exp, ExpiresAt: exp.AddDate(1, 0, 0)},
		events.TypeLicenseExpired: events.LicenseExpired{LicenseID: "lic-1", ExpiredAt: exp},
		events.TypeUsageRecorded: events.UsageRecorded{
			UsageID: "u-1", Feature: "advanced_server_workload_protection", Quantity: dec("2.5"), Unit: "hours",
			OccurredAt: at.Add(-time.Hour), RecordedAt: at, InstanceSize: "large", CloudConnector: "none",
			ContractID: "payg-1", RateKey: "advanced_server_workload_protection:data_center", Rate: dec("0.06"),
			RateSource: events.RateFromCard, RateCard: "2026-01", RateReason: "data-center rate", Amount: dec("0.15"), Currency: "USD",
		},
		events.TypeSubscriptionLinked: events.SubscriptionLinked{SubscriptionID: "sub-1", Marketplace: "aws", LinkedAt: at, PreviousAccountID: "acc-0"},
		events.TypeSubscriptionUnlinked: events.SubscriptionUnlinked{
			SubscriptionID: "sub-1", Marketplace: "aws", Reason: events.UnlinkMoved, MovedToAccountID: "acc-2",
			UnlinkedAt: at, GraceUntil: at.Add(48 * time.Hour),
		},
		events.TypeAccountExpired: events.AccountExpired{Reason: events.AccountExpiredReason, SubscriptionID: "sub-1", ExpiredAt: at.Add(48 * time.Hour)},
	}
}

// sortedTypes lists the sample types in a stable order.
func sortedTypes() []string {
	var out []string
	for t := range samplePayloads() {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// sealedEnvelope wraps a payload in a fully populated, sealed envelope.
func sealedEnvelope(tb testing.TB, p events.Payload) events.Envelope {
	tb.Helper()
	raw, err := events.EncodePayload(p)
	require.NoError(tb, err)
	e := events.Envelope{
		EventID:       "01950e7c-8a3b-7cde-9f01-23456789abcd",
		Type:          p.EventType(),
		SchemaVersion: events.SchemaVersion(p.EventType()),
		AccountID:     "acc-1",
		Version:       7,
		OccurredAt:    at,
		CommandID:     "cmd-42",
		CommandHash:   strings.Repeat("ab", 32),
		CorrelationID: "corr-9",
		Payload:       raw,
		PrevHash:      strings.Repeat("0f", 32),
	}
	require.NoError(tb, e.Seal())
	return e
}

func encoded(tb testing.TB, p events.Payload) []byte {
	tb.Helper()
	e := sealedEnvelope(tb, p)
	b, err := events.Encode(&e)
	require.NoError(tb, err)
	return b
}

// envelopeJSON is a valid sealed encoding rendered as a generic object, for edits by key.
func envelopeJSON(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(encoded(tb, samplePayloads()[events.TypeCreditsAllocated]), &m))
	return m
}

func marshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return b
}

func TestSamplesCoverEveryRegisteredType(t *testing.T) {
	t.Parallel()
	samples := samplePayloads()
	for typ, p := range samples {
		assert.Equal(t, typ, p.EventType())
	}
	assert.ElementsMatch(t, events.Types(), sortedTypes())
}

func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		assert.Equal(t, 1, events.SchemaVersion(typ), typ)
	}
	assert.Equal(t, 0, events.SchemaVersion("NoSuchEvent"))
}

func TestRoundTripEveryType(t *testing.T) {
	t.Parallel()
	for _, typ := range sortedTypes() {
		p := samplePayloads()[typ]
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			env := sealedEnvelope(t, p)
			b, err := events.Encode(&env)
			require.NoError(t, err)

			ev, err := events.Decode(b)
			require.NoError(t, err)

			assert.Equal(t, env, ev.Envelope, "the stored envelope survives the round trip")
			assert.True(t, ev.VerifyHash(), "the decoded envelope still verifies")
			assert.Zero(t, ev.Position, "position is not part of the stored bytes")
			require.IsType(t, p, ev.Data)
			want, err := events.EncodePayload(p)
			require.NoError(t, err)
			got, err := events.EncodePayload(ev.Data)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(got))

			again, err := events.Encode(&ev.Envelope)
			require.NoError(t, err)
			assert.Equal(t, string(b), string(again), "encoding is stable")
		})
	}
}

func TestRoundTripKeepsDecimalsAndTimes(t *testing.T) {
	t.Parallel()
	ev, err := events.Decode(encoded(t, samplePayloads()[events.TypePaygContractPurchased]))
	require.NoError(t, err)
	p, ok := ev.Data.(events.PaygContractPurchased)
	require.True(t, ok)
	assert.True(t, p.Rates["container_security"].Equal(dec("0.012")))
	assert.True(t, p.Rates["file_security"].Equal(dec("3.000")))
	assert.True(t, p.PurchasedAt.Equal(at), "nanoseconds survive")
}

func TestEncodePayloadWritesAmountsAsStrings(t *testing.T) {
	t.Parallel()
	raw, err := events.EncodePayload(events.CreditsAllocated{Feature: "file_security", Credits: dec("12.5000")})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	assert.Equal(t, "12.5", m["credits"], "money is a decimal string, never a JSON number")
	assert.Equal(t, "file_security", m["feature"])
}

type unregistered struct{ X int }

func (unregistered) EventType() string { return "Unregistered" }

func TestEncodePayloadRejectsUnregisteredType(t *testing.T) {
	t.Parallel()
	_, err := events.EncodePayload(unregistered{})
	assert.ErrorIs(t, err, events.ErrUnknownType)
}

func TestSealAndVerify(t *testing.T) {
	t.Parallel()
	e := sealedEnvelope(t, samplePayloads()[events.TypeLicenseActivated])
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), e.Hash)
	assert.True(t, e.VerifyHash())

	h, err := e.ComputeHash()
	require.NoError(t, err)
	assert.Equal(t, e.Hash, h)

	e.Hash = "other"
	h2, err := e.ComputeHash()
	require.NoError(t, err)
	assert.Equal(t, h, h2, "the hash does not cover itself")
	assert.False(t, e.VerifyHash())

	e.Hash = ""
	assert.False(t, e.VerifyHash(), "an unsealed envelope does not verify")
}

func TestHashChainsFromZeroHash(t *testing.T) {
	t.Parallel()
	assert.Equal(t, strings.Repeat("0", 64), events.ZeroHash)
	first := sealedEnvelope(t, samplePayloads()[events.TypeLicensePurchased])
	first.Version, first.PrevHash = 1, events.ZeroHash
	require.NoError(t, first.Seal())
	second := sealedEnvelope(t, samplePayloads()[events.TypeLicenseActivated])
	second.Version, second.PrevHash = 2, first.Hash
	require.NoError(t, second.Seal())
	assert.True(t, first.VerifyHash())
	assert.True(t, second.VerifyHash())
	assert.NotEqual(t, first.Hash, second.Hash)

	relinked := second
	relinked.PrevHash = events.ZeroHash
	assert.False(t, relinked.VerifyHash(), "moving an event in the chain breaks its hash")
}

// flipBits calls f with every one-bit change of s.
func flipBits(s string, f func(string)) {
	for i := range len(s) {
		for bit := range 8 {
			b := []byte(s)
			b[i] ^= 1 << bit
			f(string(b))
		}
	}
}

func TestVerifyHashDetectsAnyChangedBit(t *testing.T) {
	t.Parallel()
	orig := sealedEnvelope(t, samplePayloads()[events.TypeLicensePurchased])
	require.True(t, orig.VerifyHash())

	strFields := map[string]func(*events.Envelope) *string{
		"event_id":       func(e *events.Envelope) *string { return &e.EventID },
		"type":           func(e *events.Envelope) *string { return &e.Type },
		"account_id":     func(e *events.Envelope) *string { return &e.AccountID },
		"command_id":     func(e *events.Envelope) *string { return &e.CommandID },
		"command_hash":   func(e *events.Envelope) *string { return &e.CommandHash },
		"correlation_id": func(e *events.Envelope) *string { return &e.CorrelationID },
		"prev_hash":      func(e *events.Envelope) *string { return &e.PrevHash },
		"hash":           func(e *events.Envelope) *string { return &e.Hash },
	}
	for name, field := range strFields {
		flipBits(*field(&orig), func(s string) {
			e := orig
			*field(&e) = s
			assert.Falsef(t, e.VerifyHash(), "%s changed to %q still verifies", name, s)
		})
	}
	flipBits(string(orig.Payload), func(s string) {
		e := orig
		e.Payload = json.RawMessage(s)
		assert.Falsef(t, e.VerifyHash(), "payload changed to %s still verifies", s)
	})
	for bit := range 64 {
		e := orig
		e.Version ^= 1 << bit
		assert.Falsef(t, e.VerifyHash(), "version bit %d", bit)
		e = orig
		e.SchemaVersion ^= 1 << bit
		assert.Falsef(t, e.VerifyHash(), "schema_version bit %d", bit)
		e = orig
		e.OccurredAt = time.Unix(0, orig.OccurredAt.UnixNano()^(1<<bit)).UTC()
		assert.Falsef(t, e.VerifyHash(), "occurred_at bit %d", bit)
	}
	for _, c := range []struct {
		name string
		edit func(*events.Envelope)
	}{
		{"occurred_at 1ns later", func(e *events.Envelope) { e.OccurredAt = e.OccurredAt.Add(time.Nanosecond) }},
		{"occurred_at same instant in another zone", func(e *events.Envelope) { e.OccurredAt = e.OccurredAt.In(time.FixedZone("X", 3600)) }},
		{"command_hash removed", func(e *events.Envelope) { e.CommandHash = "" }},
		{"payload emptied", func(e *events.Envelope) { e.Payload = nil }},
	} {
		e := orig
		c.edit(&e)
		assert.False(t, e.VerifyHash(), c.name)
	}
	assert.True(t, orig.VerifyHash(), "the edits worked on copies")
}

func TestDecodeUnknownType(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"NoSuchEvent", "", "licensepurchased"} {
		m := envelopeJSON(t)
		m["type"] = typ
		ev, err := events.Decode(marshal(t, m))
		assert.ErrorIs(t, err, events.ErrUnknownType, typ)
		assert.NotErrorIs(t, err, events.ErrMalformed, typ)
		assert.Zero(t, ev, typ)
	}
}

func TestDecodeUnknownSchemaVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []int{0, 2, -1, 1 << 40} {
		m := envelopeJSON(t)
		m["schema_version"] = v
		ev, err := events.Decode(marshal(t, m))
		assert.ErrorIs(t, err, events.ErrUnknownType, v)
		assert.Zero(t, ev)
	}
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	valid := encoded(t, samplePayloads()[events.TypeCreditsAllocated])
	with := func(key string, v any) []byte {
		m := envelopeJSON(t)
		m[key] = v
		return marshal(t, m)
	}
	without := func(key string) []byte {
		m := envelopeJSON(t)
		delete(m, key)
		return marshal(t, m)
	}
	cases := map[string][]byte{
		"empty input":             nil,
		"whitespace":              []byte("  \n"),
		"not JSON":                []byte("LicensePurchased"),
		"truncated":               valid[:len(valid)-1],
		"array":                   []byte(`[]`),
		"string":                  []byte(`"event"`),
		"number":                  []byte(`42`),
		"trailing garbage":        append(bytes.Clone(valid), []byte(" x")...),
		"two envelopes":           append(bytes.Clone(valid), valid...),
		"unknown envelope field":  with("extra", 1),
		"version as a string":     with("version", "7"),
		"negative version":        with("version", -1),
		"schema_version as float": with("schema_version", 1.5),
		"bad occurred_at":         with("occurred_at", "yesterday"),
		"payload missing":         without("payload"),
		"payload is a string":     with("payload", "credits"),
		"payload is an array":     with("payload", []any{}),
		"unknown payload field":   with("payload", map[string]any{"feature": "file_security", "credits": "1", "bonus": true}),
		"payload credits not a number": with("payload", map[string]any{
			"feature": "file_security", "credits": "lots",
		}),
		"payload feature of the wrong type": with("payload", map[string]any{"feature": 3, "credits": "1"}),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var (
				ev  events.Event
				err error
			)
			require.NotPanics(t, func() { ev, err = events.Decode(in) })
			assert.ErrorIs(t, err, events.ErrMalformed)
			assert.NotErrorIs(t, err, events.ErrUnknownType)
			assert.Zero(t, ev)
		})
	}
}

func TestDecodeRejectsTrailingCloser(t *testing.T) {
	t.Parallel()
	valid := encoded(t, samplePayloads()[events.TypeCreditsAllocated])
	for _, tail := range []string{"}", "]", " }"} {
		_, err := events.Decode(append(bytes.Clone(valid), tail...))
		assert.ErrorIs(t, err, events.ErrMalformed, "tail %q", tail)
	}
}

func TestDecodeRejectsNullPayload(t *testing.T) {
	t.Parallel()
	m := envelopeJSON(t)
	m["payload"] = nil
	_, err := events.Decode(marshal(t, m))
	assert.ErrorIs(t, err, events.ErrMalformed)
}

// TestDecodeNeverPanics feeds every prefix and many one-byte changes of valid encodings.
func TestDecodeNeverPanics(t *testing.T) {
	t.Parallel()
	stride := 1
	if testing.Short() {
		stride = 5
	}
	for _, typ := range sortedTypes() {
		valid := encoded(t, samplePayloads()[typ])
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			for i := 0; i < len(valid); i += stride {
				require.NotPanics(t, func() { _, _ = events.Decode(valid[:i]) })
				for _, c := range []byte{'"', '}', '\\', 0xff} {
					b := bytes.Clone(valid)
					b[i] = c
					require.NotPanics(t, func() {
						if ev, err := events.Decode(b); err == nil {
							assert.NotNil(t, ev.Data)
						}
					})
				}
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, typ := range sortedTypes() {
		f.Add(encoded(f, samplePayloads()[typ]))
	}
	f.Add([]byte(`{"type":"CreditsAllocated","schema_version":1,"payload":{"feature":"x","credits":"1e3"}}`))
	f.Add([]byte(`{"type":"NoSuchEvent","schema_version":1,"payload":{}}`))
	f.Add([]byte(`{"type":"AutoRenewSet","schema_version":2,"payload":{}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := events.Decode(data)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) && !errors.Is(err, events.ErrUnknownType) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrUnknownType: %v", err)
			}
			return
		}
		if ev.Data == nil || ev.Data.EventType() != ev.Type {
			t.Fatalf("decoded %q with payload %#v", ev.Type, ev.Data)
		}
		b, err := events.Encode(&ev.Envelope)
		if err != nil {
			t.Fatalf("re-encode a decoded envelope: %v", err)
		}
		again, err := events.Decode(b)
		if err != nil {
			t.Fatalf("decode a re-encoded envelope: %v\n%s", err, b)
		}
		if again.Type != ev.Type || again.Version != ev.Version || again.SchemaVersion != ev.SchemaVersion {
			t.Fatalf("re-decoded %s v%d, first %s v%d", again.Type, again.Version, ev.Type, ev.Version)
		}
		if ev.VerifyHash() != again.VerifyHash() {
			t.Fatalf("hash verification changed across a re-encode")
		}
	})
}

// SealEncode is Seal followed by Encode, byte for byte, for every event type.
func TestSealEncodeEqualsSealThenEncode(t *testing.T) {
	t.Parallel()
	for _, typ := range events.Types() {
		env := sealedEnvelope(t, samplePayloads()[typ])
		env.Hash = ""
		viaOnePass := env
		got, err := viaOnePass.SealEncode()
		require.NoError(t, err)
		require.NoError(t, env.Seal())
		want, err := events.Encode(&env)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), typ)
		assert.Equal(t, env.Hash, viaOnePass.Hash, typ)
		ev, err := events.Decode(got)
		require.NoError(t, err, typ)
		assert.True(t, ev.VerifyHash(), typ)
	}
}
