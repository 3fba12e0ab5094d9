package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
	"github.com/creditledger/creditledger/ledger/jetstore"
	"github.com/creditledger/creditledger/projections"
)

// DefaultMaxDifferences bounds the differences a rebuild keeps (it counts them all).
const DefaultMaxDifferences = 1000

// Live answers read-model queries from the running service; commands.Client implements it.
type Live interface {
	Query(ctx context.Context, name string, body any) (json.RawMessage, error)
}

// Difference is one field on which the live read model and the rebuilt one disagree.
type Difference struct {
	AccountID string `json:"account_id"`
	Query     string `json:"query"`
	// Field is the JSON path of the field ("" for the whole answer).
	Field   string `json:"field"`
	Live    string `json:"live"`
	Rebuilt string `json:"rebuilt"`
}

func (d Difference) String() string {
	return fmt.Sprintf("account %s %s %s: live %s, rebuilt %s", d.AccountID, d.Query, d.Field, d.Live, d.Rebuilt)
}

// RebuildReport is the outcome of a rebuild-and-compare.
type RebuildReport struct {
	OK bool `json:"ok"`
	// Position is the last position rebuilt (the rebuild follows the live answers' positions).
	Position uint64 `json:"position"`
	Accounts int    `json:"accounts"`
	// Compared is the number of answers compared: every one-account read model of every
	// account, and every page of every fleet read model (payg_charges: every month with usage).
	Compared int `json:"compared"`
	// Parked counts messages the rebuilt projector could not apply, as the live one parks them.
	Parked           int          `json:"parked"`
	Differences      []Difference `json:"differences,omitempty"`
	DifferencesTotal int          `json:"differences_total"`
}

// rebuilder is a fresh projector fed from position 0 by the auditor's own reads.
type rebuilder struct {
	src *Source
	// subjects are the store's event subjects: a message under another is parked, as the live
	// projector parks it.
	subjects jetstore.Subjects
	proj     *projections.Projector
	queries  *projections.Queries
	accounts map[string]bool
}

func (r *rebuilder) catchUp(ctx context.Context, to uint64) error {
	_, err := r.src.Scan(ctx, Filter{FromPosition: r.proj.Position() + 1, ToPosition: to}, func(m Message) error {
		if m.IsFence() {
			return nil // ownership records are no events: the live projector never sees them either
		}
		if acct := m.AccountID(); acct != "" {
			if got, ok := r.subjects.AccountOf(m.Subject); !ok || got != acct {
				r.proj.ApplyDecoded(m.Position, acct, events.Event{},
					fmt.Errorf("stored under %s, %w %s", m.Subject, projections.ErrNotAccountSubject, r.subjects.Of(acct)))
				return nil
			}
		}
		r.proj.Apply(m.Position, m.AccountID(), m.Data)
		if ledger.ValidID(m.AccountID()) {
			r.accounts[m.AccountID()] = true
		}
		return nil
	})
	return err
}

// Rebuild rebuilds every read model from position 0 into a fresh projector and compares them
// with the live answers: every one-account read model (projections.AccountQueries) of every
// account, then every page of every fleet read model (projections.FleetQueries). The live answer
// is asked for with min_position at the rebuilt position; when the live one has moved further,
// the rebuild follows it to that position first, so both sides always describe the same position.
func Rebuild(ctx context.Context, src *Source, live Live, cat ledger.Catalogue) (RebuildReport, error) {
	if live == nil {
		return RebuildReport{}, errors.New("audit: nil live queries")
	}
	subjects, err := src.Subjects()
	if err != nil {
		return RebuildReport{}, err
	}
	r := &rebuilder{src: src, subjects: subjects, proj: projections.NewProjector(zerolog.Nop()), accounts: map[string]bool{}}
	if r.queries, err = projections.NewQueries(r.proj, cat, 0); err != nil {
		return RebuildReport{}, err
	}
	if err := r.catchUp(ctx, 0); err != nil {
		return RebuildReport{}, err
	}
	ids := make([]string, 0, len(r.accounts))
	for id := range r.accounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var rep RebuildReport
	for _, id := range ids {
		for _, name := range projections.AccountQueries {
			ds, err := r.compare(ctx, live, id, name)
			if err != nil {
				return rep, err
			}
			rep.add(ds)
		}
	}
	if err := r.compareFleet(ctx, live, ids, &rep); err != nil {
		return rep, err
	}
	_, rep.Parked = r.proj.ParkedMessages()
	rep.Position, rep.Accounts, rep.OK = r.proj.Position(), len(ids), rep.DifferencesTotal == 0
	return rep, nil
}

func (rep *RebuildReport) add(ds []Difference) {
	rep.Compared++
	rep.DifferencesTotal += len(ds)
	for _, d := range ds {
		if len(rep.Differences) < DefaultMaxDifferences {
			rep.Differences = append(rep.Differences, d)
		}
	}
}

func (r *rebuilder) compare(ctx context.Context, live Live, id, name string) ([]Difference, error) {
	ds, _, err := r.comparePage(ctx, live, name, projections.QueryRequest{AccountID: id})
	return ds, err
}

// compareFleet compares every page of every fleet read model; payg_charges once per month
// with usage in the rebuilt read models.
func (r *rebuilder) compareFleet(ctx context.Context, live Live, ids []string, rep *RebuildReport) error {
	months, err := r.usageMonths(ctx, ids)
	if err != nil {
		return err
	}
	for _, name := range projections.FleetQueries {
		reqs := []projections.QueryRequest{{}}
		if name == projections.QueryPaygCharges {
			reqs = reqs[:0]
			for _, m := range months {
				reqs = append(reqs, projections.QueryRequest{Month: m})
			}
		}
		for _, req := range reqs {
			if name != projections.QueryTotals {
				req.Limit = projections.MaxPageLimit
			}
			for page := 0; ; page++ { // bounded: each page moves the cursor forward through the accounts
				ds, next, err := r.comparePage(ctx, live, name, req)
				if err != nil {
					return err
				}
				rep.add(ds)
				if next == "" || page > len(ids) {
					break
				}
				req.Cursor = next
			}
		}
	}
	return nil
}

// usageMonths lists the months with usage in the rebuilt read models, oldest first.
func (r *rebuilder) usageMonths(ctx context.Context, ids []string) ([]string, error) {
	seen := map[string]bool{}
	for _, id := range ids {
		out, err := r.queries.Answer(ctx, projections.QueryUsage, projections.QueryRequest{AccountID: id})
		if err != nil {
			continue // compared (and reported) per account already
		}
		for _, m := range out.(projections.Usage).Months {
			seen[m.Month] = true
		}
	}
	months := make([]string, 0, len(seen))
	for m := range seen {
		months = append(months, m)
	}
	sort.Strings(months)
	return months, nil
}

// comparePage compares one answer; it returns the live answer's next_cursor, if any.
func (r *rebuilder) comparePage(ctx context.Context, live Live, name string, req projections.QueryRequest) ([]Difference, string, error) {
	id := req.AccountID
	if id == "" {
		id = "(fleet)"
		if req.Month != "" {
			id += " " + req.Month
		}
	}
	ask := req
	ask.MinPosition = r.proj.Position()
	raw, err := live.Query(ctx, name, ask)
	var le *ledger.Error
	if errors.As(err, &le) {
		return []Difference{{AccountID: id, Query: name, Live: fmt.Sprintf("%s: %s", le.Code, le.Message), Rebuilt: "an answer"}}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("live %s of %s: %w", name, id, err)
	}
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	_ = json.Unmarshal(raw, &page)
	ds, err := r.diff(ctx, raw, name, id, req)
	return ds, page.NextCursor, err
}

func (r *rebuilder) diff(ctx context.Context, raw json.RawMessage, name, id string, req projections.QueryRequest) ([]Difference, error) {
	var pos struct {
		Position uint64 `json:"position"`
	}
	if err := json.Unmarshal(raw, &pos); err != nil {
		return nil, fmt.Errorf("live %s of %s: %w", name, id, err)
	}
	if pos.Position > r.proj.Position() {
		if err := r.catchUp(ctx, pos.Position); err != nil {
			return nil, err
		}
	}
	out, err := r.queries.Answer(ctx, name, req)
	if err != nil {
		return []Difference{{AccountID: id, Query: name, Live: "an answer", Rebuilt: err.Error()}}, nil
	}
	rebuilt, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	var a, b any
	if err := decodeNumbers(raw, &a); err != nil {
		return nil, fmt.Errorf("live %s of %s: %w", name, id, err)
	}
	if err := decodeNumbers(rebuilt, &b); err != nil {
		return nil, err
	}
	var ds []Difference
	diffJSON("", a, b, func(field string, x, y any) {
		ds = append(ds, Difference{AccountID: id, Query: name, Field: field, Live: render(x), Rebuilt: render(y)})
	})
	return ds, nil
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// diffJSON walks two decoded JSON values and reports every path where they differ.
func diffJSON(path string, a, b any, report func(field string, x, y any)) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			diffJSON(path+"."+k, am[k], bm[k], report)
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			diffJSON(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], report)
		}
		return
	}
	if render(a) != render(b) {
		report(strings.TrimPrefix(path, "."), a, b)
	}
}

func render(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
