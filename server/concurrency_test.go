package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// sendAll sends one request per body from its own goroutine, all at once, and returns the replies
// in body order.
func sendAll(t *testing.T, nc *nats.Conn, subject string, bodies []m) []*nats.Msg {
	t.Helper()
	replies := make([]*nats.Msg, len(bodies))
	errs := make([]error, len(bodies))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func(i int, data []byte) {
			defer wg.Done()
			<-start
			replies[i], errs[i] = nc.Request(subject, data, requestTimeout)
		}(i, mustJSON(b))
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "request %d", i)
	}
	return replies
}

// TestConcurrentAllocationsNeverOverAllocate: 50 goroutines allocate on one account whose pool
// fits only some of them; the accepted ones add up to exactly what is allocated, available never
// goes negative, and every other one is insufficient_credits.
func TestConcurrentAllocationsNeverOverAllocate(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	cases := []struct {
		name, pool, amount string
		features           []string
		wantAccepted       int
	}{
		{name: "one feature", pool: "100", amount: "7", features: []string{"container_security"}, wantAccepted: 14},
		{name: "many features", pool: "1000.5", amount: "33.3", features: []string{"container_security", "file_security", "email_security", "endpoint_security_core"}, wantAccepted: 30},
		{name: "exact fit", pool: "50", amount: "1", features: []string{"file_security"}, wantAccepted: 50},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newAccount(t, l, fmt.Sprintf("conc%d", i))
			a.activeLicense(a.id+"-L", tc.pool)
			const goroutines = 50
			bodies := make([]m, goroutines)
			for g := range bodies {
				bodies[g] = a.body(m{"feature": tc.features[g%len(tc.features)], "credits": tc.amount})
			}
			accepted, maxPos := 0, uint64(0)
			perFeature := map[string]int{}
			versions := map[uint64]bool{}
			for g, msg := range sendAll(t, l.NC, "ledger.cmd.allocate_credits", bodies) {
				if msg.Header.Get("Nats-Service-Error-Code") != "" {
					r := decodeRejection(t, msg)
					assert.Equal(t, "insufficient_credits", r.Code, "only the pool limits an allocation: %s", r.raw)
					continue
				}
				r := decodeAccepted(t, msg)
				accepted++
				perFeature[bodies[g]["feature"].(string)]++
				assert.False(t, versions[r.Version], "version %d given out twice", r.Version)
				versions[r.Version] = true
				maxPos = max(maxPos, r.Position)
			}
			assert.Equal(t, tc.wantAccepted, accepted)
			b := getBalance(t, l, a.id, maxPos)
			amount := dec(tc.amount)
			assertDec(t, amount.Mul(dec(itoa(uint64(accepted)))).String(), b.AllocatedCredits, "accepted * amount == allocated")
			assert.False(t, b.AvailableCredits.IsNegative(), "available %s", b.AvailableCredits)
			assert.True(t, b.AvailableCredits.LessThan(amount), "allocation stops only when the pool cannot fit another")
			assertDec(t, "0", b.Shortfall)
			assertDec(t, tc.pool, b.TotalCredits)
			for f, n := range perFeature {
				assertDec(t, amount.Mul(dec(itoa(uint64(n)))).String(), b.Allocations[f], f)
			}
			// Versions are dense: 2 (purchase, activate) + one per accepted allocation.
			for v := uint64(3); v < uint64(3+accepted); v++ {
				assert.True(t, versions[v], "version %d", v)
			}
		})
	}
}

// TestConcurrentPurchaseOfOneLicenseID: accounts racing to buy one license id; exactly one wins,
// the others are already_exists, and only the winner lists the license.
func TestConcurrentPurchaseOfOneLicenseID(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	for round := 0; round < 5; round++ {
		const accounts = 20
		licenseID := fmt.Sprintf("shared-%d", round)
		bodies := make([]m, accounts)
		for i := range bodies {
			bodies[i] = newAccount(t, l, fmt.Sprintf("race%d-%d", round, i)).body(m{"license_id": licenseID, "source": "sales", "credits": "10"})
		}
		winner, maxPos := "", uint64(0)
		for i, msg := range sendAll(t, l.NC, "ledger.cmd.purchase_license", bodies) {
			if msg.Header.Get("Nats-Service-Error-Code") != "" {
				assert.Equal(t, "already_exists", decodeRejection(t, msg).Code)
				continue
			}
			r := decodeAccepted(t, msg)
			require.Empty(t, winner, "round %d: %s and %s both bought %s", round, winner, r.AccountID, licenseID)
			winner = bodies[i]["account_id"].(string)
			maxPos = r.Position
		}
		require.NotEmpty(t, winner, "round %d: someone wins", round)
		ls := getLicenses(t, l, winner, maxPos)
		require.Len(t, ls.Licenses, 1)
		assert.Equal(t, licenseID, ls.Licenses[0].LicenseID)
		for _, b := range bodies {
			if id := b["account_id"].(string); id != winner {
				r := decodeRejection(t, queryNATS(t, l, "licenses", id, 0))
				assert.Equal(t, "not_found", r.Code, "a loser has no events at all")
			}
		}
	}
}

// TestConcurrentAccountsLoseNoUpdate: many accounts written at once, each by several goroutines;
// every accepted command is in the account's version and balance.
func TestConcurrentAccountsLoseNoUpdate(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	const accounts, perAccount = 10, 20
	var bodies []m
	for i := 0; i < accounts; i++ {
		a := newAccount(t, l, fmt.Sprintf("many%d", i))
		a.activeLicense(a.id+"-L", "1000")
		for j := 0; j < perAccount; j++ {
			bodies = append(bodies, a.body(m{"feature": "file_security", "credits": "0.5"}))
		}
	}
	maxPos := uint64(0)
	for _, msg := range sendAll(t, l.NC, "ledger.cmd.allocate_credits", bodies) {
		maxPos = max(maxPos, decodeAccepted(t, msg).Position)
	}
	for i := 0; i < accounts; i++ {
		b := getBalance(t, l, fmt.Sprintf("many%d", i), maxPos)
		assertDec(t, "10", b.AllocatedCredits, "account ", i)
	}
	assert.Len(t, readStream(t, l), accounts*(2+perAccount))
}

// TestExpectedVersionRace: callers that all saw the same version race; exactly one wins and the
// others get version_conflict. Without expected_version every one of them is applied.
func TestExpectedVersionRace(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "evr")
	r := a.activeLicense("evr-L", "1000")
	const racers = 20
	bodies := make([]m, racers)
	for i := range bodies {
		bodies[i] = a.body(m{"feature": "file_security", "credits": "1", "expected_version": r.Version})
	}
	won := 0
	for _, msg := range sendAll(t, l.NC, "ledger.cmd.allocate_credits", bodies) {
		if msg.Header.Get("Nats-Service-Error-Code") == "" {
			assert.Equal(t, r.Version+1, decodeAccepted(t, msg).Version)
			won++
			continue
		}
		assert.Equal(t, "version_conflict", decodeRejection(t, msg).Code)
	}
	assert.Equal(t, 1, won, "exactly one caller with a given expected_version wins")
	for i := range bodies {
		bodies[i] = a.body(m{"feature": "file_security", "credits": "1"})
	}
	maxPos := uint64(0)
	for _, msg := range sendAll(t, l.NC, "ledger.cmd.allocate_credits", bodies) {
		maxPos = max(maxPos, decodeAccepted(t, msg).Position)
	}
	assertDec(t, itoa(uint64(1+racers)), getBalance(t, l, a.id, maxPos).AllocatedCredits)
}

// TestForeignAppendIsRetriedNotLost: another writer (a second ledger process, say) appends to an
// account behind this ledger's back. The next command meets JetStream's expected-last-subject-
// sequence conflict, is re-decided on the fresh history and accepted: nothing is lost, and the
// foreign event counts. A caller whose expected_version predates the foreign event is refused.
// (A second ledger process would first fence the partition, and this one would lose it; the
// account check is what catches a writer that does not fence.)
func TestForeignAppendIsRetriedNotLost(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "foreign")
	seen := a.activeLicense("foreign-L", "100")

	ack := appendChained(t, l, a, seen)

	// The license's term ends, so each next append holds two records of the account (the renewal,
	// then the command's event): the partition's fence rides on the second, and the first keeps
	// the account's head check. (An append of one record per account carries the partition's
	// fence instead of one account's head check: docs/OPERATIONS.md, the partition fence.)
	l.Clock.Advance(366 * 24 * time.Hour)
	a.reject("allocate_credits", m{"feature": "file_security", "credits": "1", "expected_version": seen.Version}, "version_conflict")
	r := a.ok("allocate_credits", m{"feature": "file_security", "credits": "70"})
	assert.Equal(t, seen.Version+3, r.Version, "the foreign event is part of the account's history (then the renewal)")
	assert.Equal(t, ack.Sequence+2, r.Position)
	b := getBalance(t, l, a.id, r.Position)
	assertDec(t, "100", b.AllocatedCredits, "30 from the foreign writer + 70")
	assertDec(t, "0", b.AvailableCredits)
	a.reject("allocate_credits", m{"feature": "file_security", "credits": "0.0001"}, "insufficient_credits")
	verifyStream(t, l)
}

// TestForeignChainedEventRefusesTheAccountAfterOneAppend is the single-record form of
// TestForeignAppendIsRetriedNotLost, and the window the projector's report leaves
// (docs/OPERATIONS.md, the partition fence): the foreign event continues the chain, so the
// projector applies it; the next command's lone record carries the partition fence, not the
// account's head check, and lands on top with the same version. The projector parks that
// record and reports it, and from then on the account is refused history_broken at its
// position: nothing more is appended to it.
func TestForeignChainedEventRefusesTheAccountAfterOneAppend(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "foreign-chained")
	seen := a.activeLicense("foreign-chained-L", "100")
	ack := appendChained(t, l, a, seen)
	assertDec(t, "30", getBalance(t, l, a.id, ack.Sequence).AllocatedCredits, "the projector applied the foreign event")

	r := a.ok("allocate_credits", m{"feature": "file_security", "credits": "70"})
	assert.Equal(t, seen.Version+1, r.Version, "the writer did not know of the foreign event: the same version again")
	require.Eventually(t, func() bool { return l.WriterStats().MarkedBroken == 1 }, requestTimeout, 5*time.Millisecond,
		"the projector never reported the record that repeats the version")
	head := lastEvent(t, l)
	rej := a.reject("allocate_credits", m{"feature": "file_security", "credits": "1"}, "history_broken")
	assert.Equal(t, itoa(r.Position), rej.Data["position"])
	assert.Equal(t, head, lastEvent(t, l), "nothing appended after the break")
}

// appendChained appends the account's next event straight to JetStream, chained and sealed like
// the ledger's own (an allocation of 30 credits), as a writer that does not fence would.
func appendChained(t *testing.T, l *testledger.Ledger, a *account, seen accepted) *jetstream.PubAck {
	t.Helper()
	// Append the account's next event directly, chained and sealed like the ledger's own.
	stored := readStream(t, l)
	last := stored[len(stored)-1].env
	require.Equal(t, a.id, last.AccountID)
	payload, err := events.EncodePayload(events.CreditsAllocated{Feature: "email_security", Credits: dec("30")})
	require.NoError(t, err)
	env := events.Envelope{
		EventID: uuid.Must(uuid.NewV7()).String(), Type: "CreditsAllocated", SchemaVersion: events.SchemaVersion("CreditsAllocated"),
		AccountID: a.id, Version: last.Version + 1, OccurredAt: l.Clock.Now(), CommandID: "foreign-writer-1",
		CorrelationID: "foreign-writer-1", Payload: payload, PrevHash: last.Hash,
	}
	require.NoError(t, env.Seal())
	data, err := events.Encode(&env)
	require.NoError(t, err)
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ack, err := js.Publish(ctx, jetstore.DefaultSubjects.Of(a.id), data, jetstream.WithExpectLastSequencePerSubject(seen.Position))
	require.NoError(t, err)
	return ack
}
