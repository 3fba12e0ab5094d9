package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// TestRestartKeepsEventsAndProjectionsCatchUp: after a restart the stream holds every
// acknowledged event, every query answers exactly as before, and new commands continue the
// accounts' versions.
func TestRestartKeepsEventsAndProjectionsCatchUp(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	ids := []string{"rs1", "rs2", "rs3"}
	accts := map[string]*account{}
	for _, id := range ids {
		accts[id] = newAccount(t, l, id)
		seedQueryAccount(t, accts[id])
	}
	accts["rs2"].ok("release_credits", m{"feature": "email_security", "credits": "20"})
	accts["rs3"].ok("purchase_license", m{"license_id": "rs3-OLD", "source": "sales", "credits": "5", "auto_renew": false,
		"contract_start": "2020-01-01T00:00:00Z"})
	head := streamHead(t, l)
	require.Equal(t, head, l.Head())
	before := map[string]string{}
	for _, id := range ids {
		for _, q := range queryNames {
			msg := queryNATS(t, l, q, id, head)
			require.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "%s", msg.Data)
			before[id+"/"+q] = string(msg.Data)
		}
	}
	versions := map[string]uint64{}
	for _, id := range ids {
		versions[id] = lastVersion(t, l, id)
	}

	for round := 1; round <= 2; round++ {
		restart(t, l)
		require.Equal(t, head, lastEvent(t, l), "round %d: every acknowledged event kept, nothing added", round)
		assert.Equal(t, streamHead(t, l), l.Head(), "round %d: the writer loaded the whole stream (the start's ownership records too)", round)
		for _, id := range ids {
			for _, q := range queryNames {
				msg := queryNATS(t, l, q, id, head)
				assert.JSONEq(t, samePosition(t, before[id+"/"+q]), samePosition(t, string(msg.Data)), "round %d: %s %s identical after restart", round, id, q)
				status, body := queryHTTP(t, l, q, id, head)
				assert.Equal(t, 200, status)
				assert.JSONEq(t, samePosition(t, before[id+"/"+q]), samePosition(t, string(body)), "round %d: HTTP %s %s", round, id, q)
			}
		}
	}

	next := streamHead(t, l) + 1 // after the restarts' ownership records
	for i, id := range ids {
		r := accts[id].ok("allocate_credits", m{"feature": "container_security", "credits": "1"})
		assert.Equal(t, versions[id]+1, r.Version, "%s continues its version", id)
		assert.Equal(t, next+uint64(i), r.Position, "%s continues the stream", id)
	}
	verifyStream(t, l)
}

// samePosition blanks a query answer's position: the projection's position in the stream, which
// a restart moves past the ownership records it writes although no account changed.
func samePosition(t *testing.T, answer string) string {
	t.Helper()
	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(answer), &obj), answer)
	if _, ok := obj["position"]; ok {
		obj["position"] = "restart-independent"
	}
	out, err := json.Marshal(obj)
	require.NoError(t, err)
	return string(out)
}

// lastVersion is an account's version as the stream shows it.
func lastVersion(t *testing.T, l *testledger.Ledger, accountID string) uint64 {
	t.Helper()
	var v uint64
	for _, e := range readStream(t, l) {
		if e.env.AccountID == accountID {
			v = e.env.Version
		}
	}
	return v
}

// TestRestartUnderLoadLosesNothingAcknowledged: commands keep arriving from a separate connection
// while the ledger restarts. Every acknowledged command is in the stream afterwards; retrying
// every unacknowledged one with its command_id applies each exactly once.
func TestRestartUnderLoadLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	a := newAccount(t, l, "load")
	a.activeLicense("load-L", "1000000")
	nc, err := nats.Connect(l.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()

	const senders = 4
	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		pending []m // unacknowledged when the senders stopped
		retries int // failed attempts, each retried with the same command_id
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := 0; ; i++ {
				body := m{"command_id": fmt.Sprintf("load-%d-%d", s, i), "account_id": "load", "feature": "file_security", "credits": "1"}
				for {
					select {
					case <-stop:
						mu.Lock()
						pending = append(pending, body)
						mu.Unlock()
						return
					default:
					}
					msg, err := nc.Request("ledger.cmd.allocate_credits", mustJSON(body), 2*time.Second)
					mu.Lock()
					ok := err == nil && msg.Header.Get(micro.ErrorCodeHeader) == ""
					if ok {
						acked[body["command_id"].(string)] = true
					} else {
						retries++
					}
					mu.Unlock()
					if ok {
						break
					}
					select { // back off briefly while the ledger is down; stop still wins
					case <-stop:
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}(s)
	}
	waitAcked := func(n int) {
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= n
		}, eventuallyWait, eventuallyTick)
	}
	waitAcked(20)
	restart(t, l)
	mu.Lock()
	ackedAtRestart := len(acked)
	mu.Unlock()
	waitAcked(ackedAtRestart + 20)
	close(stop)
	wg.Wait()

	// Everything acknowledged is in the stream.
	inStream := map[string]int{}
	for _, e := range readStream(t, l) {
		if e.env.Type == "CreditsAllocated" {
			inStream[e.env.CommandID]++
		}
	}
	for id := range acked {
		assert.Equal(t, 1, inStream[id], "acknowledged %s is stored exactly once", id)
	}
	// Retrying each unacknowledged command applies it at most once more.
	for _, body := range pending {
		decodeAccepted(t, request(t, l, "ledger.cmd.allocate_credits", body))
	}
	total := len(acked) + len(pending)
	inStream = map[string]int{}
	for _, e := range readStream(t, l) {
		if e.env.Type == "CreditsAllocated" {
			inStream[e.env.CommandID]++
		}
	}
	assert.Len(t, inStream, total, "every command stored")
	for id, n := range inStream {
		assert.Equal(t, 1, n, "%s stored once", id)
	}
	b := getBalance(t, l, "load", streamHead(t, l))
	assertDec(t, itoa(uint64(total)), b.AllocatedCredits)
	t.Logf("acknowledged %d, failed attempts retried %d, pending at stop %d", len(acked), retries, len(pending))
}

// exchange is one command sent and its first reply.
type exchange struct {
	cmd   string
	body  m
	reply string
}

// recordingAccount sends commands and keeps every exchange for a later retry.
type recordingAccount struct {
	*account
	log *[]exchange
}

func (r recordingAccount) ok(name string, fields m) accepted {
	r.t.Helper()
	body := r.body(fields)
	a := decodeAccepted(r.t, request(r.t, r.l, "ledger.cmd."+name, body))
	*r.log = append(*r.log, exchange{cmd: name, body: body, reply: string(a.raw)})
	return a
}

// deleteSnapshots removes the writer's snapshots so the next start replays the stream from the
// first event; it reports false when this build keeps no snapshots.
func deleteSnapshots(t *testing.T, l *testledger.Ledger) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	obs, err := js.ObjectStore(ctx, jetstore.SnapshotBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false
	}
	require.NoError(t, err)
	infos, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return false
	}
	require.NoError(t, err)
	for _, info := range infos {
		require.NoError(t, obs.Delete(ctx, info.Name))
	}
	return len(infos) > 0
}

// TestRestartFromSnapshotAndFromReplay: a restart that loads the writer's snapshot and one that
// replays the whole stream both keep every reply retryable byte for byte, every query identical,
// and the cross-account uniqueness of license and contract ids.
func TestRestartFromSnapshotAndFromReplay(t *testing.T) {
	t.Parallel()
	l := startLedger(t)
	var log []exchange
	a := recordingAccount{newAccount(t, l, "rp1"), &log}
	b := recordingAccount{newAccount(t, l, "rp2"), &log}
	a.ok("purchase_license", m{"license_id": "rp-L1", "source": "sales", "credits": "100"})
	a.ok("activate_license", m{"license_id": "rp-L1"})
	a.ok("purchase_license", m{"license_id": "rp-AZ", "source": "azure_marketplace", "credits": "30"})
	a.ok("activate_license", m{"license_id": "rp-AZ"})
	a.ok("upgrade_contract", m{"license_id": "rp-AZ", "additional_credits": "3"})
	a.ok("allocate_credits", m{"feature": "container_security", "credits": "12.5"})
	a.ok("purchase_payg_contract", m{"contract_id": "rp-P"})
	a.ok("activate_payg_contract", m{"contract_id": "rp-P"})
	a.ok("switch_billing_model", m{"feature": "container_security", "to": "payg"})
	a.ok("purchase_license", m{"license_id": "rp-OLD", "source": "sales", "credits": "1", "contract_start": "2022-02-01T00:00:00Z"})
	b.ok("purchase_license", m{"license_id": "rp-B", "source": "aws_marketplace", "credits": "5", "auto_renew": false})
	b.ok("set_auto_renew", m{"license_id": "rp-B", "enabled": true})
	head := streamHead(t, l)
	before := map[string]string{}
	for _, id := range []string{"rp1", "rp2"} {
		for _, q := range queryNames {
			before[id+"/"+q] = string(queryNATS(t, l, q, id, head).Data)
		}
	}

	check := func(t *testing.T, how string) {
		require.Equal(t, head, lastEvent(t, l), how)
		for _, e := range log {
			msg := request(t, l, "ledger.cmd."+e.cmd, e.body)
			assert.Equal(t, e.reply, string(msg.Data), "%s: retry of %s %s returns the first reply", how, e.cmd, e.body["command_id"])
		}
		for _, id := range []string{"rp1", "rp2"} {
			for _, q := range queryNames {
				assert.JSONEq(t, samePosition(t, before[id+"/"+q]), samePosition(t, string(queryNATS(t, l, q, id, head).Data)), "%s: %s %s", how, id, q)
			}
		}
		c := newAccount(t, l, "rp3")
		for _, lic := range []string{"rp-L1", "rp-B", "rp-AZ-u1"} {
			c.reject("purchase_license", m{"license_id": lic, "source": "sales", "credits": "1"}, "already_exists")
		}
		c.reject("purchase_payg_contract", m{"contract_id": "rp-P"}, "already_exists")
		c.reject("activate_license", m{"license_id": "rp-B"}, "not_found")
		assert.Equal(t, head, lastEvent(t, l), "%s: retries and rejections append nothing", how)
	}
	restart(t, l)
	check(t, "restart")
	if !deleteSnapshots(t, l) {
		t.Log("no writer snapshot to delete; the second restart replays the stream anyway")
	}
	restart(t, l)
	check(t, "restart with a full replay")

	next := streamHead(t, l) + 1 // after the restarts' ownership records
	r := a.ok("allocate_credits", m{"feature": "file_security", "credits": "1"})
	assert.Equal(t, next, r.Position)
	verifyStream(t, l)
}
