package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/internal/testledger"
)

// m is a JSON object under construction.
type m = map[string]any

// requestTimeout bounds every request a test makes.
const requestTimeout = 10 * time.Second

// eventually is how long require.Eventually polls for the projection or the expiry processor.
const (
	eventuallyWait = 5 * time.Second
	eventuallyTick = 10 * time.Millisecond
)

// startLedger starts a ledger with the default min_position wait: a read at the position of a
// write just acknowledged waits for the projector, which on a loaded CI machine can take longer
// than a short wait (a 300 ms one answered such reads unavailable).
func startLedger(t *testing.T, opts ...testledger.Option) *testledger.Ledger {
	t.Helper()
	l := testledger.Start(t, opts...)
	waitServing(t, l)
	return l
}

// restart restarts the ledger and waits until it serves.
func restart(t *testing.T, l *testledger.Ledger) {
	t.Helper()
	l.Restart(t)
	waitServing(t, l)
}

// waitServing works around BUG (see TestServingWhenStartReturns): server.Start returns before
// the server's connection has flushed its endpoint subscriptions, so a client that sends at once
// can get "no responders". The query endpoints are subscribed last on the same connection, so
// once ledger.query.switches answers, every endpoint is known to the NATS server.
func waitServing(t *testing.T, l *testledger.Ledger) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := l.NC.Request("ledger.query.switches", []byte(`{"account_id":"--probe--"}`), time.Second)
		return err == nil
	}, eventuallyWait, time.Millisecond, "ledger endpoints never became reachable")
}

// eventRef is one event of an accepted reply.
type eventRef struct {
	Type     string `json:"type"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position"`
}

// accepted is the success reply of a command, decoded from the wire.
type accepted struct {
	OK        bool       `json:"ok"`
	AccountID string     `json:"account_id"`
	Version   uint64     `json:"version"`
	Position  uint64     `json:"position"`
	Events    []eventRef `json:"events"`
	raw       []byte
	header    nats.Header
}

// types lists the event types of the reply, in order.
func (a accepted) types() []string {
	out := make([]string, len(a.Events))
	for i, e := range a.Events {
		out[i] = e.Type
	}
	return out
}

// rejection is the error reply of a command or query, decoded from the wire.
type rejection struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Data    map[string]string `json:"data"`
	raw     []byte
}

// request sends a raw body (string, []byte or any JSON value) to a subject over l.NC.
func request(t *testing.T, l *testledger.Ledger, subject string, body any) *nats.Msg {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		data, err = json.Marshal(body)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	msg, err := l.NC.RequestWithContext(ctx, subject, data)
	require.NoError(t, err, "request %s %s", subject, data)
	return msg
}

// keys returns the sorted keys of a JSON object.
func keys(obj map[string]json.RawMessage) []string {
	out := make([]string, 0, len(obj))
	for k := range obj {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeAccepted checks the exact wire shape of a success reply and decodes it.
func decodeAccepted(t *testing.T, msg *nats.Msg) accepted {
	t.Helper()
	require.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "unexpected rejection: %s", msg.Data)
	var obj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(msg.Data, &obj), "reply %s", msg.Data)
	require.Equal(t, []string{"account_id", "events", "ok", "position", "version"}, keys(obj), "reply %s", msg.Data)
	var evs []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(obj["events"], &evs))
	for _, e := range evs {
		require.Equal(t, []string{"position", "type", "version"}, keys(e), "event ref in %s", msg.Data)
	}
	var a accepted
	dec := json.NewDecoder(bytes.NewReader(msg.Data))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&a))
	a.raw, a.header = msg.Data, msg.Header
	require.True(t, a.OK, "reply %s", msg.Data)
	require.NotEmpty(t, a.Events, "an accepted command appends at least one event: %s", msg.Data)
	// Events are one atomic append: consecutive versions and positions ending at the reply's.
	last := a.Events[len(a.Events)-1]
	assert.Equal(t, a.Version, last.Version, "reply version is the last event's version")
	assert.Equal(t, a.Position, last.Position, "reply position is the last event's position")
	for i := 1; i < len(a.Events); i++ {
		assert.Equal(t, a.Events[i-1].Version+1, a.Events[i].Version, "versions consecutive: %s", msg.Data)
		assert.Equal(t, a.Events[i-1].Position+1, a.Events[i].Position, "positions consecutive: %s", msg.Data)
	}
	return a
}

// decodeRejection checks the exact wire shape of a rejection, including the micro error headers.
func decodeRejection(t *testing.T, msg *nats.Msg) rejection {
	t.Helper()
	var obj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(msg.Data, &obj), "reply %s", msg.Data)
	require.Equal(t, []string{"error", "ok"}, keys(obj), "rejection %s", msg.Data)
	require.JSONEq(t, "false", string(obj["ok"]))
	var eobj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(obj["error"], &eobj))
	require.Contains(t, eobj, "code")
	require.Contains(t, eobj, "message")
	for k := range eobj {
		require.Contains(t, []string{"code", "message", "data"}, k, "unexpected error field in %s", msg.Data)
	}
	var r rejection
	require.NoError(t, json.Unmarshal(obj["error"], &r))
	r.raw = msg.Data
	assert.NotEmpty(t, r.Message)
	assert.Equal(t, r.Code, msg.Header.Get(micro.ErrorCodeHeader), "micro error code header")
	assert.Equal(t, r.Message, msg.Header.Get(micro.ErrorHeader), "micro error header")
	return r
}

// cmdSeq makes command ids unique across the whole test binary.
var cmdSeq atomic.Uint64

// nextCmdID returns a fresh command id.
func nextCmdID(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, cmdSeq.Add(1))
}

// account drives one account of a ledger with raw NATS commands.
type account struct {
	t  *testing.T
	l  *testledger.Ledger
	id string
}

func newAccount(t *testing.T, l *testledger.Ledger, id string) *account {
	return &account{t: t, l: l, id: id}
}

// body adds a fresh command_id and the account id to fields.
func (a *account) body(fields m) m {
	b := m{"command_id": nextCmdID(a.id), "account_id": a.id}
	for k, v := range fields {
		b[k] = v
	}
	return b
}

// send sends a command with a fresh command_id and returns the raw reply.
func (a *account) send(name string, fields m) *nats.Msg {
	a.t.Helper()
	return request(a.t, a.l, "ledger.cmd."+name, a.body(fields))
}

// ok sends a command and requires it to be accepted.
func (a *account) ok(name string, fields m) accepted {
	a.t.Helper()
	r := decodeAccepted(a.t, a.send(name, fields))
	require.Equal(a.t, a.id, r.AccountID)
	return r
}

// reject sends a command and requires the rejection code.
func (a *account) reject(name string, fields m, code string) rejection {
	a.t.Helper()
	r := decodeRejection(a.t, a.send(name, fields))
	require.Equal(a.t, code, r.Code, "rejection %s", r.raw)
	return r
}

// activeLicense purchases and activates a sales license of credits and returns the activation.
func (a *account) activeLicense(licenseID, credits string) accepted {
	a.t.Helper()
	a.ok("purchase_license", m{"license_id": licenseID, "source": "sales", "credits": credits})
	return a.ok("activate_license", m{"license_id": licenseID})
}

// activePayg purchases and activates a PAYG contract.
func (a *account) activePayg(contractID string) accepted {
	a.t.Helper()
	a.ok("purchase_payg_contract", m{"contract_id": contractID})
	return a.ok("activate_payg_contract", m{"contract_id": contractID})
}

// streamHead reads the LEDGER stream's last sequence from JetStream itself (not the writer).
func streamHead(t *testing.T, l *testledger.Ledger) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	s, err := js.Stream(ctx, "LEDGER")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return info.State.LastSeq
}

// queryNATS sends ledger.query.<name> and returns the raw reply.
func queryNATS(t *testing.T, l *testledger.Ledger, name, accountID string, minPosition uint64) *nats.Msg {
	t.Helper()
	body := m{"account_id": accountID}
	if minPosition > 0 {
		body["min_position"] = minPosition
	}
	return request(t, l, "ledger.query."+name, body)
}

// queryHTTP gets /v1/accounts/{id}/<name> and returns the status and body.
func queryHTTP(t *testing.T, l *testledger.Ledger, name, accountID string, minPosition uint64) (int, []byte) {
	t.Helper()
	u := l.HTTPURL() + "/v1/accounts/" + accountID + "/" + name
	if minPosition > 0 {
		u += "?min_position=" + strconv.FormatUint(minPosition, 10)
	}
	return httpGet(t, u)
}

func httpGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// balance is the balance answer with amounts as decimals.
type balance struct {
	AccountID        string                     `json:"account_id"`
	Position         uint64                     `json:"position"`
	TotalCredits     decimal.Decimal            `json:"total_credits"`
	AllocatedCredits decimal.Decimal            `json:"allocated_credits"`
	AvailableCredits decimal.Decimal            `json:"available_credits"`
	Shortfall        decimal.Decimal            `json:"shortfall"`
	Allocations      map[string]decimal.Decimal `json:"allocations"`
}

// licenseItem is one row of the licenses answer.
type licenseItem struct {
	LicenseID       string     `json:"license_id"`
	ParentLicenseID *string    `json:"parent_license_id"`
	Source          string     `json:"source"`
	Status          string     `json:"status"`
	Credits         string     `json:"credits"`
	AutoRenew       bool       `json:"auto_renew"`
	PurchasedAt     time.Time  `json:"purchased_at"`
	ActivatedAt     *time.Time `json:"activated_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
}

type licenses struct {
	AccountID string        `json:"account_id"`
	Position  uint64        `json:"position"`
	Licenses  []licenseItem `json:"licenses"`
}

func (ls licenses) byID(id string) (licenseItem, bool) {
	for _, it := range ls.Licenses {
		if it.LicenseID == id {
			return it, true
		}
	}
	return licenseItem{}, false
}

type switchEntry struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
}

type featureSwitches struct {
	BillingModel        string        `json:"billing_model"`
	NextSwitchAllowedAt *time.Time    `json:"next_switch_allowed_at"`
	History             []switchEntry `json:"history"`
}

type switches struct {
	AccountID string                     `json:"account_id"`
	Position  uint64                     `json:"position"`
	Features  map[string]featureSwitches `json:"features"`
}

// query runs a NATS query that must succeed and decodes it into out.
func query(t *testing.T, l *testledger.Ledger, name, accountID string, minPosition uint64, out any) {
	t.Helper()
	msg := queryNATS(t, l, name, accountID, minPosition)
	require.Empty(t, msg.Header.Get(micro.ErrorCodeHeader), "query %s %s: %s", name, accountID, msg.Data)
	require.NoError(t, json.Unmarshal(msg.Data, out), "answer %s", msg.Data)
}

func getBalance(t *testing.T, l *testledger.Ledger, accountID string, minPosition uint64) balance {
	t.Helper()
	var b balance
	query(t, l, "balance", accountID, minPosition, &b)
	return b
}

func getLicenses(t *testing.T, l *testledger.Ledger, accountID string, minPosition uint64) licenses {
	t.Helper()
	var ls licenses
	query(t, l, "licenses", accountID, minPosition, &ls)
	return ls
}

func getSwitches(t *testing.T, l *testledger.Ledger, accountID string, minPosition uint64) switches {
	t.Helper()
	var s switches
	query(t, l, "switches", accountID, minPosition, &s)
	return s
}

// dec parses a decimal literal for comparisons.
func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// assertDec compares decimals by value (two equal values may differ in scale).
func assertDec(t *testing.T, want string, got decimal.Decimal, msgAndArgs ...any) {
	t.Helper()
	assert.Truef(t, dec(want).Equal(got), "want %s, got %s %v", want, got, fmt.Sprint(msgAndArgs...))
}

// rfc3339 renders a time as the wire does.
func rfc3339(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
