package audit_test

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/audit"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// The event subject vectors (docs/FORMAT.md §1): testdata/subjects.json holds, for a few
// accounts and partition counts, FNV-1a 32 of the account id, its partition and the subject a
// store this build creates files its events under; and subjects a verifier must refuse for
// acme's events, each with the store's scheme, its partition count and why. An auditor in
// another language checks its own hash and subject check against them.

type vectorSubjects struct {
	Partitioned []vectorSubject        `json:"partitioned"`
	Foreign     []vectorForeignSubject `json:"foreign"`
}

type vectorSubject struct {
	AccountID  string `json:"account_id"`
	FNV1a32    uint32 `json:"fnv1a32"`
	Partitions int    `json:"partitions"`
	Partition  int    `json:"partition"`
	Subject    string `json:"subject"`
	// OlderSubject is the account's subject in a store created before partitioned subjects.
	OlderSubject string `json:"older_subject"`
}

type vectorForeignSubject struct {
	Subject   string `json:"subject"`
	AccountID string `json:"account_id"`
	// Scheme is the store's: "partition" (metadata creditledger_event_subjects) or "account".
	Scheme     string `json:"scheme"`
	Partitions int    `json:"partitions"`
	Why        string `json:"why"`
}

func (v vectorForeignSubject) store() jetstore.Subjects {
	return jetstore.Subjects{Partitions: v.Partitions, Partitioned: v.Scheme == jetstore.SubjectsPartitioned}
}

func subjectVectors(t *testing.T) vectorSubjects {
	t.Helper()
	var v vectorSubjects
	accounts := []string{"acme", "globex", "a", "Z", "0", "acme-corp_01", strings.Repeat("x", 64)}
	for _, acc := range accounts {
		h := fnv.New32a() // the standard library's FNV-1a, not ledger.PartitionOf's
		_, _ = h.Write([]byte(acc))
		for _, n := range []int{1, 7, 64, ledger.MaxPartitions} {
			p := int(h.Sum32() % uint32(n))
			require.Equal(t, p, ledger.PartitionOf(acc, n), "%s among %d", acc, n)
			v.Partitioned = append(v.Partitioned, vectorSubject{AccountID: acc, FNV1a32: h.Sum32(), Partitions: n, Partition: p,
				Subject: jetstore.Subjects{Partitions: n, Partitioned: true}.Of(acc), OlderSubject: jetstore.Subjects{Partitions: n}.Of(acc)})
		}
	}
	const part, older = jetstore.SubjectsPartitioned, "account"
	v.Foreign = []vectorForeignSubject{
		{"ledger.events.46.acme", "acme", part, 64, "another partition: acme's is 47 of 64"},
		{"ledger.events.047.acme", "acme", part, 64, "a leading zero"},
		{"ledger.events.+47.acme", "acme", part, 64, "a sign"},
		{"ledger.events.111.acme", "acme", part, 64, "111 is 47 modulo 64, but no partition of 64"},
		{"ledger.events.7.acme", "acme", part, 64, "acme's partition of 8, in a store of 64"},
		{"ledger.events.acme", "acme", part, 64, "an account subject in a store of partitioned subjects"},
		{"ledger.events.47.acme", "acme", older, 64, "a partitioned subject in a store of account subjects"},
		{"ledger.events.47.globex", "acme", part, 64, "another account's subject"},
		{"ledger.events.globex", "acme", older, 64, "another account's subject"},
		{"ledger.events.47.acme.x", "acme", part, 64, "a token after the account id"},
		{"ledger.fence.47", "acme", part, 64, "no events subject"},
	}
	return v
}

func TestSubjectVectors(t *testing.T) {
	t.Parallel()
	want := indentJSON(t, subjectVectors(t))
	file := filepath.Join(vectorDir, "subjects.json")
	if *updateVectors {
		require.NoError(t, os.WriteFile(file, want, 0o644))
	}
	got, err := os.ReadFile(file)
	require.NoError(t, err, "run go test ./audit -run TestSubjectVectors -update-vectors")
	assert.Equal(t, string(want), string(got), "testdata/subjects.json: the code no longer produces these bytes")

	acme := jetstore.Subjects{Partitions: 64, Partitioned: true}
	assert.Equal(t, "ledger.events.47.acme", acme.Of("acme"), "docs/FORMAT.md §1's worked example")
	assert.Equal(t, vectorSubject{AccountID: "acme", FNV1a32: 1174237615, Partitions: 64, Partition: 47,
		Subject: "ledger.events.47.acme", OlderSubject: "ledger.events.acme"}, subjectVectors(t).Partitioned[2])

	// Read as an auditor would: every subject verifies an event of its account in its store,
	// and no foreign subject does.
	var v vectorSubjects
	readJSON(t, "subjects.json", &v)
	for _, s := range v.Partitioned {
		data := accountChain(t, s.AccountID, 1)[0]
		for _, c := range []struct {
			store   jetstore.Subjects
			subject string
		}{
			{jetstore.Subjects{Partitions: s.Partitions, Partitioned: true}, s.Subject},
			{jetstore.Subjects{Partitions: s.Partitions}, s.OlderSubject},
		} {
			chain := audit.NewChain()
			chain.SetSubjects(c.store)
			assert.Empty(t, chain.Apply(audit.Message{Position: 1, Subject: c.subject, Data: data}), "%s", c.subject)
		}
		assert.Equal(t, fmt.Sprintf("ledger.events.%d.%s", s.Partition, s.AccountID), s.Subject)
	}
	data := acmeChain(t, 1)[0]
	for _, f := range v.Foreign {
		chain := audit.NewChain()
		chain.SetSubjects(f.store())
		fs := chain.Apply(audit.Message{Position: 1, Subject: f.Subject, Data: data})
		require.Len(t, fs, 1, f.Why)
		want := audit.KindWrongSubject
		if strings.HasPrefix(f.Subject, jetstore.FencePrefix) {
			want = audit.KindForeignFence
		}
		assert.Equal(t, want, fs[0].Kind, f.Why)
	}
}
