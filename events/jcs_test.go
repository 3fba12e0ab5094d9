package events_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
)

// The canonicalizer HashRuleJCS uses (jsontext.Value.Canonicalize) reproduces the RFC's own
// examples: string escaping, member order by UTF-16 code units, and ES6 number serialisation.
func TestCanonicalizerPassesRFC8785Vectors(t *testing.T) {
	t.Parallel()
	var vec struct {
		Objects []struct{ Name, Input, Canonical string }
		Numbers [][2]string
	}
	data, err := os.ReadFile("testdata/rfc8785.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &vec))
	require.NotEmpty(t, vec.Objects)
	for _, o := range vec.Objects {
		v := jsontext.Value(o.Input)
		require.NoError(t, v.Canonicalize(), o.Name)
		assert.Equal(t, o.Canonical, string(v), o.Name)
	}
	require.Len(t, vec.Numbers, 24)
	for _, n := range vec.Numbers {
		b, err := hex.DecodeString(n[0])
		require.NoError(t, err)
		f := math.Float64frombits(binary.BigEndian.Uint64(b))
		v := jsontext.Value(strconv.FormatFloat(f, 'e', -1, 64))
		require.NoError(t, v.Canonicalize(), n[0])
		assert.Equal(t, n[1], string(v), "IEEE 754 %s", n[0])
	}
}

// The envelope's hand-written canonical form equals the general canonicalizer run over the
// envelope as Go encodes it, for every event type and for strings that need escaping.
func TestCanonicalJCSMatchesRFC8785(t *testing.T) {
	t.Parallel()
	odd := []string{"plain", "<&>", "quote\" back\\slash", "ctrl\x01\x1f\t\n", "\u2028\u2029", "é€😀", ""}
	for _, typ := range sortedTypes() {
		for _, s := range odd {
			e := sealedEnvelope(t, samplePayloads()[typ])
			e.CorrelationID, e.CommandID = s, "cmd"+s
			if s == "" {
				e.CommandHash = ""
			}
			stored, err := e.SealEncode()
			require.NoError(t, err)
			// The generic path: Go's encoding, minus hash, through the RFC 8785 canonicalizer.
			generic, err := events.CanonicalStored(marshal(t, e))
			require.NoError(t, err)
			fromStored, err := events.CanonicalStored(stored)
			require.NoError(t, err)
			assert.Equal(t, string(generic), string(fromStored), "%s %q", typ, s)
			assert.Equal(t, string(stored), string(fromStored[:len(fromStored)-1])+`,"hash":"`+e.Hash+`"}`,
				"the stored form is the canonical form with hash appended")
			ev, err := events.Decode(stored)
			require.NoError(t, err)
			h, err := events.StoredHash(stored, &ev.Envelope)
			require.NoError(t, err)
			assert.Equal(t, e.Hash, h)
			assert.True(t, ev.VerifyHash())
		}
	}
}

func TestCanonicalStoredRejectsWhatIsNotOneObject(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `[]`, `{"a":1}{}`, `{"a":1,"a":2}`, `{"a":"\ud800"}`, `{"a":1`, `"x"`} {
		_, err := events.CanonicalStored([]byte(in))
		assert.Error(t, err, in)
	}
	got, err := events.CanonicalStored([]byte(` {"hash":"x", "b":[1.0, "é"], "a":{}} `))
	require.NoError(t, err)
	assert.Equal(t, `{"a":{},"b":[1,"é"]}`, string(got))
}

// Events written before HashRuleJCS (these two lines were written by the previous build) keep
// verifying, and an envelope names the rule that made its hash.
func TestLegacyEventsKeepVerifying(t *testing.T) {
	t.Parallel()
	legacy := []string{
		`{"event_id":"0194b7c2-0000-7000-8000-000000000001","type":"LicenseActivated","schema_version":1,"account_id":"acme","version":1,"occurred_at":"2026-01-15T10:00:01Z","command_id":"c-\u003c1\u003e","correlation_id":"","payload":{"license_id":"L-1 \u003c\u0026\u003e","activated_at":"2026-01-15T10:00:00Z"},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0bce39a8cb5984ea6d2fe5f6fe74a2b97245b916093fc6d1c06ae4deedcfe10c"}`,
		`{"event_id":"0194b7c2-0000-7000-8000-000000000002","type":"AutoRenewSet","schema_version":1,"account_id":"acme","version":2,"occurred_at":"2026-01-15T10:00:02Z","command_id":"c-2","correlation_id":"","payload":{"license_id":"L-1 \u003c\u0026\u003e","enabled":false},"prev_hash":"0bce39a8cb5984ea6d2fe5f6fe74a2b97245b916093fc6d1c06ae4deedcfe10c","hash":"df0ff10ecb1582b9180759dffaa928acdbd73a37922586b4e0a2229206b1e77e"}`,
	}
	for _, s := range legacy {
		ev, err := events.Decode([]byte(s))
		require.NoError(t, err)
		assert.Equal(t, events.HashRuleLegacy, ev.HashRule)
		h, err := events.StoredHash([]byte(s), &ev.Envelope)
		require.NoError(t, err)
		assert.Equal(t, ev.Hash, h)
		again, err := events.Encode(&ev.Envelope)
		require.NoError(t, err)
		assert.Equal(t, s, string(again), "a legacy event re-encodes to its stored bytes")
		// Claiming the new rule for old bytes does not verify: the rule is covered by the hash.
		forged := strings.Replace(s, `"prev_hash"`, `"hash_rule":"rfc8785-sha256","prev_hash"`, 1)
		fev, err := events.Decode([]byte(forged))
		require.NoError(t, err)
		h, err = events.StoredHash([]byte(forged), &fev.Envelope)
		require.NoError(t, err)
		assert.NotEqual(t, fev.Hash, h)
	}
	e := sealedEnvelope(t, samplePayloads()[events.TypeCreditsAllocated])
	assert.Equal(t, events.HashRuleJCS, e.HashRule, "new events use the new rule")
	unknown := e
	unknown.HashRule = "md5"
	_, err := unknown.ComputeHash()
	assert.ErrorIs(t, err, events.ErrUnknownHashRule)
}

// The shortcut for the stored form (hash last) and the general path agree, also when "hash"
// appears elsewhere in the object.
func TestCanonicalStoredShortcutAgrees(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"b":1,"a":"x","hash":"` + strings.Repeat("a", 64) + `"}`,
		`{"b":{"hash":2},"a":"hash","hash":"` + strings.Repeat("a", 64) + `"}`,
		`{"hash":"` + strings.Repeat("a", 64) + `","b":1}`,
	} {
		got, err := events.CanonicalStored([]byte(in))
		require.NoError(t, err, in)
		assert.NotContains(t, strings.TrimPrefix(string(got), "{"), `{"hash":"aaaa`, in)
		assert.Regexp(t, `^\{("a":("x"|"hash"),)?"b":(1|\{"hash":2\})\}$`, string(got), in)
	}
}

// RFC 8785 writes numbers as IEEE 754 doubles: sealing a payload whose number a double does not
// hold exactly would store and hash another value than the one decided. Seal refuses it instead;
// numbers a double holds (whatever their spelling) and digits inside strings are fine.
func TestSealRefusesANumberRFC8785WouldChange(t *testing.T) {
	t.Parallel()
	seal := func(payload string) (events.Envelope, error) {
		e := events.Envelope{EventID: "e-1", Type: events.TypeCreditsAllocated, SchemaVersion: 1, AccountID: "acme",
			Version: 1, CommandID: "c-1", Payload: json.RawMessage(payload), PrevHash: events.ZeroHash}
		_, err := e.SealEncode()
		return e, err
	}
	for _, p := range []string{
		`{"n":9007199254740993}`, `{"n":-9007199254740993}`, `{"n":18446744073709551615}`,
		`{"n":1.23456789012345678}`, `{"a":[1,{"b":0.10000000000000000001}]}`, `{"n":1e400}`,
	} {
		_, err := seal(p)
		assert.ErrorIs(t, err, events.ErrInexactNumber, p)
	}
	for p, stored := range map[string]string{
		`{"n":9007199254740992}`:                                   `{"n":9007199254740992}`,
		`{"term_months":12,"x":-0,"y":1.0,"z":1e2}`:                `{"term_months":12,"x":0,"y":1,"z":100}`,
		`{"s":"9007199254740993 \"1.23456789012345678\"","f":0.1}`: `{"f":0.1,"s":"9007199254740993 \"1.23456789012345678\""}`,
	} {
		e, err := seal(p)
		require.NoError(t, err, p)
		assert.Equal(t, stored, string(e.Payload), p)
	}
}

// The legacy rule is the absence of hash_rule (docs/FORMAT.md): an explicit "hash_rule":"" names
// no rule, and an outside verifier following the spec refuses it. StoredHash, the auditor's
// check, refuses it too rather than hash it as legacy; "hash_rule" as a string value elsewhere is
// no such member.
func TestStoredHashRefusesAnEmptyHashRuleMember(t *testing.T) {
	t.Parallel()
	legacy := func(mid string) []byte {
		e := events.Envelope{EventID: "e-1", Type: events.TypeAutoRenewSet, SchemaVersion: 1, AccountID: "acme", Version: 1,
			CommandID: "c-1", CorrelationID: mid, Payload: json.RawMessage(`{"license_id":"L-1","enabled":false}`), PrevHash: events.ZeroHash}
		require.NoError(t, e.SealLegacy())
		b, err := events.Encode(&e)
		require.NoError(t, err)
		return b
	}
	ok := legacy("hash_rule")
	ev, err := events.Decode(ok)
	require.NoError(t, err)
	h, err := events.StoredHash(ok, &ev.Envelope)
	require.NoError(t, err, "the string \"hash_rule\" as a value is no member")
	assert.Equal(t, ev.Hash, h)

	// The same event with an empty hash_rule member, its legacy hash recomputed over it.
	body, err := events.LegacyStored(ok)
	require.NoError(t, err)
	hashed := append(body[:len(body)-1:len(body)-1], `,"hash_rule":""}`...)
	forged := fmt.Appendf(hashed[:len(hashed)-1:len(hashed)-1], `,"hash":"%x"}`, sha256.Sum256(hashed))
	require.Contains(t, string(forged), `"hash_rule":"",`)
	fev, err := events.Decode(forged)
	require.NoError(t, err, "%s", forged)
	_, err = events.StoredHash(forged, &fev.Envelope)
	assert.ErrorIs(t, err, events.ErrUnknownHashRule)
}
