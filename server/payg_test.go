package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/creditledger/creditledger/commands"
	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/internal/testledger"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/projections"
	"github.com/creditledger/creditledger/server"
)

// Helpers of the PAYG and subscription tests (payg_test.go, subscription_test.go); their names
// start with pg so they never collide with the other server tests' helpers.

const pgWait = 5 * time.Second

var pgSeq atomic.Uint64

// pgStart starts a test ledger and waits until its endpoints answer (server.Start can return
// before the NATS server has seen the endpoint subscriptions).
func pgStart(t *testing.T, opts ...testledger.Option) *testledger.Ledger {
	t.Helper()
	l := testledger.Start(t, opts...)
	pgWaitServing(t, l)
	return l
}

func pgWaitServing(t *testing.T, l *testledger.Ledger) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := l.NC.Request("ledger.query.account", []byte(`{"account_id":"--probe--"}`), time.Second)
		return err == nil
	}, pgWait, time.Millisecond, "ledger endpoints never became reachable")
}

func pgRestart(t *testing.T, l *testledger.Ledger) {
	t.Helper()
	l.Restart(t)
	pgWaitServing(t, l)
}

// pgMeta is a fresh command envelope for an account.
func pgMeta(account string) commands.Meta {
	return commands.Meta{CommandID: fmt.Sprintf("pg-%d", pgSeq.Add(1)), AccountID: account}
}

func pgCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pgCode is the rejection code of a client error ("" when err is not a rejection).
func pgCode(err error) ledger.Code {
	var le *ledger.Error
	if errors.As(err, &le) {
		return le.Code
	}
	return ""
}

func pgTypes(a commands.Accepted) []string {
	out := make([]string, len(a.Events))
	for i, e := range a.Events {
		out[i] = e.Type
	}
	return out
}

// pgPayg gives an account an active PAYG contract (with optional rates) and switches features
// to PAYG at the clock's current time; it returns the last reply.
func pgPayg(t *testing.T, l *testledger.Ledger, account string, rates map[string]string, features ...string) commands.Accepted {
	t.Helper()
	ctx := pgCtx(t)
	wire := map[string]commands.Amount{}
	for k, v := range rates {
		wire[k] = commands.MustAmount(v)
	}
	_, err := l.Client.PurchasePaygContract(ctx, commands.PurchasePaygContract{Meta: pgMeta(account), ContractID: account + "-P", Rates: wire})
	require.NoError(t, err)
	last, err := l.Client.ActivatePaygContract(ctx, commands.ActivatePaygContract{Meta: pgMeta(account), ContractID: account + "-P"})
	require.NoError(t, err)
	for _, f := range features {
		last, err = l.Client.SwitchBillingModel(ctx, commands.SwitchBillingModel{Meta: pgMeta(account), Feature: f, To: "payg"})
		require.NoError(t, err)
	}
	return last
}

func pgUsage(account, id, feature, qty, unit string, at time.Time) commands.RecordUsage {
	return commands.RecordUsage{Meta: pgMeta(account), UsageID: id, Feature: feature, Quantity: commands.MustAmount(qty),
		Unit: unit, OccurredAt: at.Format(time.RFC3339Nano)}
}

// pgQuery asks a NATS query, waiting for minPosition, and decodes the answer into out.
func pgQuery(t *testing.T, l *testledger.Ledger, name string, body map[string]any, out any) json.RawMessage {
	t.Helper()
	raw, err := l.Client.Query(pgCtx(t), name, body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out))
	}
	return raw
}

// pgGet fetches an HTTP route of the ledger.
func pgGet(t *testing.T, l *testledger.Ledger, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(pgCtx(t), http.MethodGet, l.HTTPURL()+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// pgStream reads and decodes every event of the LEDGER stream, in order (ownership records are
// skipped).
func pgStream(t *testing.T, l *testledger.Ledger) []events.Event {
	t.Helper()
	ctx := pgCtx(t)
	js, err := jetstream.New(l.NC)
	require.NoError(t, err)
	s, err := js.Stream(ctx, jetstore.StreamName)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	out := make([]events.Event, 0, info.State.LastSeq)
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		msg, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		if strings.HasPrefix(msg.Subject, jetstore.FencePrefix) {
			continue // a partition's ownership record: not an event
		}
		ev, err := events.Decode(msg.Data)
		require.NoError(t, err, "position %d", seq)
		require.True(t, ev.VerifyHash(), "position %d hash", seq)
		ev.Position = seq
		out = append(out, ev)
	}
	return out
}

func pgHead(t *testing.T, l *testledger.Ledger) uint64 {
	t.Helper()
	evs := pgStream(t, l)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Position // the last event: a restart writes ownership records after it
}

func pgDec(t *testing.T, want string, got any, msg ...any) {
	t.Helper()
	var d decimal.Decimal
	switch g := got.(type) {
	case decimal.Decimal:
		d = g
	case string:
		// Shown amounts carry every minor digit of the currency ("5.00").
		require.Regexp(t, `^-?[0-9]+\.[0-9]{2}$`, g, msg...)
		d = decimal.RequireFromString(g)
	default:
		t.Fatalf("pgDec: %T", got)
	}
	assert.Truef(t, decimal.RequireFromString(want).Equal(d), "want %s, got %s %v", want, d, msg)
}

// pgUsageOf reads the usage read model over NATS and checks HTTP answers the same.
func pgUsageOf(t *testing.T, l *testledger.Ledger, account, month string, minPosition uint64) projections.Usage {
	t.Helper()
	body := map[string]any{"account_id": account, "min_position": minPosition}
	path := "/v1/accounts/" + account + "/usage"
	if month != "" {
		body["month"] = month
		path += "?month=" + month
	}
	var u projections.Usage
	raw := pgQuery(t, l, projections.QueryUsage, body, &u)
	status, httpBody := pgGet(t, l, path)
	require.Equal(t, http.StatusOK, status, string(httpBody))
	assert.JSONEq(t, string(raw), string(httpBody), "NATS and HTTP answer the same")
	return u
}

// TestUsageEndToEnd: usage of every PAYG feature is priced, recorded with its rate and why,
// and summed per month and feature in the usage read model over NATS and HTTP.
func TestUsageEndToEnd(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	ctx := pgCtx(t)
	const acc = "pg-e2e"
	pgPayg(t, l, acc, map[string]string{"container_security": "0.004", "advanced_server_workload_protection:large": "0.02"},
		"container_security", "file_security", "advanced_server_workload_protection", "cloud_account_assessment")
	at := l.Clock.Now().Add(time.Minute)
	l.Clock.Advance(time.Hour)

	asw := func(id, qty, size, conn string) commands.RecordUsage {
		c := pgUsage(acc, id, "advanced_server_workload_protection", qty, "hours", at)
		c.InstanceSize, c.CloudConnector = size, conn
		return c
	}
	cases := []struct {
		cmd               commands.RecordUsage
		amount, rate, key string
		source            string
		reasonContains    string
	}{
		{pgUsage(acc, "u-cs", "container_security", "100", "hours", at), "0.4", "0.004", "container_security", events.RateFromContract, "contract's rate"},
		{pgUsage(acc, "u-fs", "file_security", "12.5", "gb", at), "0.375", "0.03", "file_security", events.RateFromCard, "rate card"},
		{pgUsage(acc, "u-ca", "cloud_account_assessment", "3", "accounts", at), "0.75", "0.25", "cloud_account_assessment", events.RateFromCard, "rate card"},
		{asw("u-aws-l", "10", "large", "aws"), "0.2", "0.02", "advanced_server_workload_protection:large", events.RateFromContract, "aws cloud connector"},
		{asw("u-gcp-x", "10", "xlarge", "gcp"), "0.48", "0.048", "advanced_server_workload_protection:xlarge", events.RateFromCard, "gcp cloud connector"},
		{asw("u-dc-m", "10", "medium", "none"), "0.6", "0.06", "advanced_server_workload_protection:data_center", events.RateFromCard, "data-center rate"},
	}
	var last commands.Accepted
	for _, tc := range cases {
		r, err := l.Client.RecordUsage(ctx, tc.cmd)
		require.NoError(t, err, tc.cmd.UsageID)
		require.Equal(t, []string{events.TypeUsageRecorded}, pgTypes(r))
		last = r
	}
	// The stream holds what an auditor needs to recompute every amount.
	byID := map[string]events.UsageRecorded{}
	for _, ev := range pgStream(t, l) {
		if u, ok := ev.Data.(events.UsageRecorded); ok {
			byID[u.UsageID] = u
		}
	}
	for _, tc := range cases {
		u := byID[tc.cmd.UsageID]
		pgDec(t, tc.amount, u.Amount, tc.cmd.UsageID)
		pgDec(t, tc.rate, u.Rate, tc.cmd.UsageID)
		assert.True(t, u.Quantity.Mul(u.Rate).Equal(u.Amount), "quantity x rate = amount for %s", tc.cmd.UsageID)
		assert.Equal(t, tc.key, u.RateKey)
		assert.Equal(t, tc.source, u.RateSource)
		assert.Contains(t, u.RateReason, tc.reasonContains)
		assert.Equal(t, acc+"-P", u.ContractID)
		assert.Equal(t, "USD", u.Currency)
		assert.True(t, u.OccurredAt.Equal(at))
	}

	usage := pgUsageOf(t, l, acc, at.Format("2006-01"), last.Position)
	require.Len(t, usage.Months, 1)
	mo := usage.Months[0]
	assert.Equal(t, at.Format("2006-01"), mo.Month)
	assert.Equal(t, "USD", mo.Currency)
	assert.Equal(t, len(cases), mo.Total.Records)
	pgDec(t, "2.805", mo.Total.AmountExact)
	pgDec(t, "2.8", mo.Total.Amount, "2.805 rounds half-even to 2.80")
	w := mo.Features["advanced_server_workload_protection"]
	assert.Equal(t, 3, w.Records)
	assert.Equal(t, "hours", w.Unit)
	pgDec(t, "30", w.Quantity)
	pgDec(t, "1.28", w.AmountExact)
	fs := mo.Features["file_security"]
	pgDec(t, "0.375", fs.AmountExact)
	pgDec(t, "0.38", fs.Amount, "0.375 rounds half-even to 0.38")
	assert.NotEmpty(t, usage.Rounding)
	assert.Equal(t, last.Position, usage.Position)
}

// TestUsageStraddlingASwitch: usage that happened before the feature switched to PAYG is
// rejected and appends nothing; usage after the switch is billed.
func TestUsageStraddlingASwitch(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	ctx := pgCtx(t)
	const acc = "pg-straddle"
	pgPayg(t, l, acc, nil)
	switchAt := l.Clock.Now().Add(time.Hour)
	l.Clock.Set(switchAt)
	_, err := l.Client.SwitchBillingModel(ctx, commands.SwitchBillingModel{Meta: pgMeta(acc), Feature: "file_security", To: "payg"})
	require.NoError(t, err)
	l.Clock.Advance(2 * time.Hour)

	head := pgHead(t, l)
	_, err = l.Client.RecordUsage(ctx, pgUsage(acc, "before", "file_security", "5", "gb", switchAt.Add(-time.Minute)))
	assert.Equal(t, ledger.CodeFeatureNotOnPayg, pgCode(err), "%v", err)
	_, err = l.Client.RecordUsage(ctx, pgUsage(acc, "never", "container_security", "5", "hours", switchAt.Add(time.Minute)))
	assert.Equal(t, ledger.CodeFeatureNotOnPayg, pgCode(err), "a feature still on credits")
	assert.Equal(t, head, pgHead(t, l), "rejected usage appends nothing")

	at, err := l.Client.RecordUsage(ctx, pgUsage(acc, "at", "file_security", "5", "gb", switchAt))
	require.NoError(t, err, "usage at the switch instant is billed")
	after, err := l.Client.RecordUsage(ctx, pgUsage(acc, "after", "file_security", "5", "gb", switchAt.Add(time.Minute)))
	require.NoError(t, err)
	assert.Greater(t, after.Position, at.Position)

	u := pgUsageOf(t, l, acc, "", after.Position)
	require.Len(t, u.Months, 1)
	assert.Equal(t, 2, u.Months[0].Total.Records)
	pgDec(t, "0.3", u.Months[0].Total.AmountExact, "2 x 5 gb x 0.03")

	// Switching back to credits ends billing from that instant; earlier usage may still arrive.
	l.Clock.Advance(ledger.SwitchInterval)
	back := l.Clock.Now()
	_, err = l.Client.SwitchBillingModel(ctx, commands.SwitchBillingModel{Meta: pgMeta(acc), Feature: "file_security", To: "credits"})
	require.NoError(t, err)
	l.Clock.Advance(time.Hour)
	_, err = l.Client.RecordUsage(ctx, pgUsage(acc, "late-but-payg", "file_security", "1", "gb", back.Add(-time.Minute)))
	assert.NoError(t, err)
	_, err = l.Client.RecordUsage(ctx, pgUsage(acc, "on-credits", "file_security", "1", "gb", back.Add(time.Minute)))
	assert.Equal(t, ledger.CodeFeatureNotOnPayg, pgCode(err))
}

// TestUsageMonthBoundariesAreUTC: a record belongs to the UTC calendar month of occurred_at,
// whatever zone the sender wrote the time in.
func TestUsageMonthBoundariesAreUTC(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	ctx := pgCtx(t)
	const acc = "pg-months"
	pgPayg(t, l, acc, map[string]string{"file_security": "1"}, "file_security")
	feb := time.Date(2026, time.February, 1, 0, 0, 0, 0, time.UTC)
	l.Clock.Set(feb.Add(30 * time.Minute))
	plus2 := time.FixedZone("UTC+2", 2*3600)
	minus5 := time.FixedZone("UTC-5", -5*3600)
	records := []struct {
		id    string
		at    time.Time
		qty   string
		month string
	}{
		{"jan-last-ns", feb.Add(-time.Nanosecond), "1", "2026-01"},
		{"feb-first-instant", feb, "10", "2026-02"},
		// 01:30 on 1 February in UTC+2 is still January in UTC.
		{"jan-in-plus2", feb.Add(-30 * time.Minute).In(plus2), "100", "2026-01"},
		// 19:10 on 31 January in UTC-5 is already February in UTC.
		{"feb-in-minus5", feb.Add(10 * time.Minute).In(minus5), "1000", "2026-02"},
	}
	var last commands.Accepted
	for _, r := range records {
		var err error
		last, err = l.Client.RecordUsage(ctx, pgUsage(acc, r.id, "file_security", r.qty, "gb", r.at))
		require.NoError(t, err, r.id)
	}
	all := pgUsageOf(t, l, acc, "", last.Position)
	require.Len(t, all.Months, 2)
	assert.Equal(t, "2026-01", all.Months[0].Month, "oldest month first")
	pgDec(t, "101", all.Months[0].Total.AmountExact)
	assert.Equal(t, 2, all.Months[0].Total.Records)
	assert.Equal(t, "2026-02", all.Months[1].Month)
	pgDec(t, "1010", all.Months[1].Total.AmountExact)

	jan := pgUsageOf(t, l, acc, "2026-01", last.Position)
	require.Len(t, jan.Months, 1)
	assert.Equal(t, all.Months[0], jan.Months[0])
	dec := pgUsageOf(t, l, acc, "2025-12", last.Position)
	require.Len(t, dec.Months, 1, "a month without usage answers zeros")
	assert.Equal(t, 0, dec.Months[0].Total.Records)
	pgDec(t, "0", dec.Months[0].Total.Amount)
	assert.Empty(t, dec.Months[0].Features)
}

// TestUsageRoundingAndMonthTotal: amounts are exact in events and sums, shown rounded half-even
// to cents; a month's total is the sum of its records.
func TestUsageRoundingAndMonthTotal(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	ctx := pgCtx(t)
	const acc = "pg-round"
	pgPayg(t, l, acc, map[string]string{"file_security": "0.0125", "container_security": "0.0025"}, "file_security", "container_security")
	at := l.Clock.Now()
	l.Clock.Advance(time.Hour)

	_, err := l.Client.RecordUsage(ctx, pgUsage(acc, "half", "file_security", "10", "gb", at))
	require.NoError(t, err)
	last, err := l.Client.RecordUsage(ctx, pgUsage(acc, "tiny", "container_security", "1", "hours", at))
	require.NoError(t, err)
	mo := pgUsageOf(t, l, acc, at.Format("2006-01"), last.Position).Months[0]
	pgDec(t, "0.125", mo.Features["file_security"].AmountExact)
	pgDec(t, "0.12", mo.Features["file_security"].Amount, "0.125 is a tie: half-even rounds to the even cent")
	pgDec(t, "0.0025", mo.Features["container_security"].AmountExact)
	pgDec(t, "0", mo.Features["container_security"].Amount)
	pgDec(t, "0.1275", mo.Total.AmountExact)
	pgDec(t, "0.13", mo.Total.Amount, "the total is rounded from the exact sum, not summed from rounded lines")

	// Many records with random quantities: the month's exact total is the sum of the amounts the
	// events carry, and its shown total is that sum rounded half-even.
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 60; i++ {
		qty := decimal.New(rng.Int64N(1_000_000)+1, -4) // 0.0001 .. 100
		feature, unit := "file_security", "gb"
		if i%2 == 1 {
			feature, unit = "container_security", "hours"
		}
		last, err = l.Client.RecordUsage(ctx, pgUsage(acc, fmt.Sprintf("r%02d", i), feature, qty.String(), unit, at.Add(time.Duration(i)*time.Second)))
		require.NoError(t, err)
	}
	mo = pgUsageOf(t, l, acc, at.Format("2006-01"), last.Position).Months[0]
	sum, records := decimal.Zero, 0
	perFeature := map[string]decimal.Decimal{}
	for _, ev := range pgStream(t, l) {
		if u, ok := ev.Data.(events.UsageRecorded); ok && ev.AccountID == acc {
			sum = sum.Add(u.Amount)
			perFeature[u.Feature] = perFeature[u.Feature].Add(u.Amount)
			records++
		}
	}
	assert.Equal(t, records, mo.Total.Records)
	assert.Equal(t, 62, records)
	assert.True(t, sum.Equal(mo.Total.AmountExact), "exact total %s = sum of records %s", mo.Total.AmountExact, sum)
	assert.Equal(t, sum.RoundBank(2).StringFixed(2), mo.Total.Amount, "shown total = sum rounded half-even")
	featureSum := decimal.Zero
	for f, v := range mo.Features {
		assert.True(t, perFeature[f].Equal(v.AmountExact), f)
		featureSum = featureSum.Add(v.AmountExact)
	}
	assert.True(t, featureSum.Equal(mo.Total.AmountExact), "features add up to the total")
}

// TestUsageTimeWindow: too late is usage_too_late; too far in the future is invalid_argument;
// the lateness window is configurable.
func TestUsageTimeWindow(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	short := pgStart(t, func(c *server.Config) { c.Payg.UsageLateness = time.Hour })
	for _, lg := range []*testledger.Ledger{l, short} {
		pgPayg(t, lg, "pg-window", nil, "file_security")
		lg.Clock.Advance(72 * time.Hour)
	}
	ctx := pgCtx(t)
	now := l.Clock.Now()
	cases := []struct {
		name string
		l    *testledger.Ledger
		at   time.Time
		code ledger.Code
	}{
		{"48h ago is accepted", l, now.Add(-48 * time.Hour), ""},
		{"48h and 1ms ago is too late", l, now.Add(-48*time.Hour - time.Millisecond), ledger.CodeUsageTooLate},
		{"5 minutes ahead is within the clock skew", l, now.Add(5 * time.Minute), ""},
		{"6 minutes ahead is in the future", l, now.Add(6 * time.Minute), ledger.CodeInvalidArgument},
		{"a 1h window accepts 59 minutes", short, now.Add(-59 * time.Minute), ""},
		{"a 1h window refuses 2 hours", short, now.Add(-2 * time.Hour), ledger.CodeUsageTooLate},
	}
	for i, tc := range cases {
		_, err := tc.l.Client.RecordUsage(ctx, pgUsage("pg-window", fmt.Sprintf("w%d", i), "file_security", "1", "gb", tc.at))
		assert.Equal(t, tc.code, pgCode(err), "%s: %v", tc.name, err)
	}
}

// TestUsageIDIdempotency: a repeated usage_id with the same content (under a new command_id)
// returns the first reply and appends nothing, also after a restart; other content is
// idempotency_key_reused.
func TestUsageIDIdempotency(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	const acc = "pg-idem"
	pgPayg(t, l, acc, nil, "file_security")
	at := l.Clock.Now()
	l.Clock.Advance(time.Minute)
	send := func(body map[string]any) ([]byte, string) {
		msg, err := l.NC.Request(commands.Subject("record_usage"), mustMarshal(t, body), 10*time.Second)
		require.NoError(t, err)
		return msg.Data, msg.Header.Get(commands.ReplayedHeader)
	}
	body := func(cmd, qty string) map[string]any {
		return map[string]any{"command_id": cmd, "account_id": acc, "usage_id": "u-1", "feature": "file_security",
			"quantity": qty, "unit": "gb", "occurred_at": at.Format(time.RFC3339Nano)}
	}
	first, replayed := send(body("c-1", "10"))
	require.Contains(t, string(first), `"ok":true`)
	assert.Empty(t, replayed)
	head := pgHead(t, l)

	again, replayed := send(body("c-2", "10.00"))
	assert.JSONEq(t, string(first), string(again), "the first reply, under a new command_id")
	assert.Equal(t, "true", replayed)
	other, _ := send(body("c-3", "11"))
	assert.Contains(t, string(other), string(ledger.CodeIdempotencyKeyReused))
	assert.Equal(t, head, pgHead(t, l), "repeats append nothing")

	// Long after the lateness window and a restart, the same usage still answers the first reply.
	l.Clock.Advance(30 * 24 * time.Hour)
	pgRestart(t, l)
	again, replayed = send(body("c-4", "10"))
	assert.JSONEq(t, string(first), string(again))
	assert.Equal(t, "true", replayed)
	other, _ = send(body("c-5", "10.5"))
	assert.Contains(t, string(other), string(ledger.CodeIdempotencyKeyReused))
	assert.Equal(t, head, pgHead(t, l))
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestUsageRejections: malformed and refused usage gets its code and appends nothing.
func TestUsageRejections(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	const acc = "pg-rej"
	pgPayg(t, l, acc, nil, "file_security", "advanced_server_workload_protection")
	at := l.Clock.Now().Format(time.RFC3339)
	l.Clock.Advance(time.Minute)
	base := func(extra map[string]any) map[string]any {
		b := map[string]any{"command_id": fmt.Sprintf("rej-%d", pgSeq.Add(1)), "account_id": acc, "usage_id": "u-1",
			"feature": "file_security", "quantity": "1", "unit": "gb", "occurred_at": at}
		for k, v := range extra {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	asw := map[string]any{"feature": "advanced_server_workload_protection", "unit": "hours", "instance_size": "large", "cloud_connector": "aws"}
	with := func(a, b map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name string
		body map[string]any
		code ledger.Code
	}{
		{"wrong unit", base(map[string]any{"unit": "hours"}), ledger.CodeInvalidArgument},
		{"no unit", base(map[string]any{"unit": nil}), ledger.CodeInvalidArgument},
		{"zero quantity", base(map[string]any{"quantity": "0"}), ledger.CodeInvalidArgument},
		{"negative quantity", base(map[string]any{"quantity": "-1"}), ledger.CodeInvalidArgument},
		{"over-precise quantity", base(map[string]any{"quantity": "0.00001"}), ledger.CodeInvalidArgument},
		{"bad occurred_at", base(map[string]any{"occurred_at": "yesterday"}), ledger.CodeInvalidArgument},
		{"no occurred_at", base(map[string]any{"occurred_at": nil}), ledger.CodeInvalidArgument},
		{"bad usage_id", base(map[string]any{"usage_id": "u.1"}), ledger.CodeInvalidArgument},
		{"unknown field", base(map[string]any{"price": "1"}), ledger.CodeInvalidArgument},
		{"unknown feature", base(map[string]any{"feature": "quantum"}), ledger.CodeUnknownFeature},
		{"feature never PAYG-eligible", base(map[string]any{"feature": "email_security", "unit": "mailboxes"}), ledger.CodeFeatureNotPaygEligible},
		{"size on a flat feature", base(map[string]any{"instance_size": "large"}), ledger.CodeInvalidArgument},
		{"workload without connector", base(with(asw, map[string]any{"cloud_connector": nil})), ledger.CodeInvalidArgument},
		{"workload with unknown size", base(with(asw, map[string]any{"instance_size": "huge"})), ledger.CodeInvalidArgument},
		{"no PAYG at all", base(map[string]any{"account_id": "pg-rej-none"}), ledger.CodeFeatureNotOnPayg},
	}
	head := pgHead(t, l)
	for _, tc := range cases {
		_, err := l.Client.Send(pgCtx(t), "record_usage", tc.body)
		assert.Equal(t, tc.code, pgCode(err), "%s: %v", tc.name, err)
	}
	assert.Equal(t, head, pgHead(t, l), "rejections append nothing")
	_, err := l.Client.Send(pgCtx(t), "record_usage", base(asw))
	assert.NoError(t, err, "the workload body itself is fine")
}

// TestUsageQueryErrors: a bad month is invalid_argument (HTTP 400), an unknown account not_found.
func TestUsageQueryErrors(t *testing.T) {
	t.Parallel()
	l := pgStart(t)
	pos := pgPayg(t, l, "pg-q", nil).Position
	for _, month := range []string{"2026-1", "2026-13", "202601", "2026-01-01", "jan"} {
		_, err := l.Client.Query(pgCtx(t), projections.QueryUsage, map[string]any{"account_id": "pg-q", "month": month, "min_position": pos})
		assert.Equal(t, ledger.CodeInvalidArgument, pgCode(err), "month %q", month)
		status, _ := pgGet(t, l, "/v1/accounts/pg-q/usage?month="+month)
		assert.Equal(t, http.StatusBadRequest, status, "month %q", month)
	}
	_, err := l.Client.Query(pgCtx(t), projections.QueryUsage, map[string]any{"account_id": "pg-nobody"})
	assert.Equal(t, ledger.CodeNotFound, pgCode(err))
	status, _ := pgGet(t, l, "/v1/accounts/pg-nobody/usage")
	assert.Equal(t, http.StatusNotFound, status)
	var u projections.Usage
	pgQuery(t, l, projections.QueryUsage, map[string]any{"account_id": "pg-q"}, &u)
	assert.Empty(t, u.Months, "an account without usage has no months")
}
