package writer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger"
)

// SnapshotStore keeps the writer's snapshots. A snapshot is a cache: losing or refusing one
// only means replaying the stream from the start.
type SnapshotStore interface {
	Save(ctx context.Context, name string, data []byte) error
	Load(ctx context.Context, name string) ([]byte, error)
}

const (
	// snapshotName changes with snapshotMagic so an old format is never misread; an older build
	// does not find a newer snapshot and replays the stream instead (v3 lacks the compacted
	// idempotency section: reading a v4 snapshot as v3 would forget those commands).
	snapshotName  = "writer-v4"
	snapshotMagic = "creditledger-writer-snapshot-v4\n"
	// The previous format, still read when no v4 snapshot exists yet (the first start after an
	// upgrade), so an upgrade does not replay the whole stream.
	snapshotNameV3  = "writer-v3"
	snapshotMagicV3 = "creditledger-writer-snapshot-v3\n"
	// DefaultSnapshotEvery is how many appended events trigger a snapshot.
	DefaultSnapshotEvery = 100_000
)

// accountSnap is one account in a snapshot.
type accountSnap struct {
	State  ledger.Account
	Head   uint64
	Hash   string
	Broken string
	// BrokenAt is the position where a broken account's history breaks (0 in older snapshots).
	BrokenAt uint64
}

// typeCodes numbers event types for the compact command section.
func typeCodes() ([]string, map[string]byte) {
	types := events.Types()
	sort.Strings(types)
	idx := make(map[string]byte, len(types))
	for i, t := range types {
		idx[t] = byte(i)
	}
	return types, idx
}

// encodeSnapshot serialises accounts (gob) and idempotency records (a compact binary section).
func (w *Writer) encodeSnapshot() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	accts := make(map[string]accountSnap, len(w.accounts))
	for id, a := range w.accounts {
		s := accountSnap{State: a.state, Head: a.head, Hash: a.hash}
		if a.broken != nil {
			s.Broken, s.BrokenAt = a.broken.reason, a.broken.position
		}
		if a.stale {
			continue // re-read from the stream after restore
		}
		accts[id] = s
	}
	// Layout: magic, the length of the gob section, the gob section (head, type table, accounts),
	// then the compact command section. The length lets a restore decode the two sections on two
	// cores at once.
	var sec bytes.Buffer
	enc := gob.NewEncoder(&sec)
	if err := enc.Encode(w.head.Load()); err != nil {
		return nil, fmt.Errorf("encode snapshot head: %w", err)
	}
	// The snapshot carries its own table of event-type codes, so a build that registers more
	// types still reads an older snapshot correctly.
	types, codes := typeCodes()
	if err := enc.Encode(types); err != nil {
		return nil, fmt.Errorf("encode snapshot type table: %w", err)
	}
	if err := enc.Encode(accts); err != nil {
		return nil, fmt.Errorf("encode snapshot accounts: %w", err)
	}
	b := binary.AppendUvarint(buf.Bytes(), uint64(sec.Len()))
	b = append(b, sec.Bytes()...)
	b = binary.AppendUvarint(b, uint64(len(w.idem.accepted)))
	for id, rec := range w.idem.accepted {
		b = appendString(b, id)
		b = appendString(b, rec.accountID)
		b = appendString(b, rec.bodyHash)
		b = binary.AppendUvarint(b, uint64(len(rec.result.Events)))
		for _, e := range rec.result.Events {
			code, ok := codes[e.Type]
			if !ok {
				return nil, fmt.Errorf("snapshot: unknown event type %q", e.Type)
			}
			b = append(b, code)
			b = binary.AppendUvarint(b, e.Version)
			b = binary.AppendUvarint(b, e.Position)
		}
	}
	// Remembered rejections follow, oldest first, so a clean restart keeps replaying them.
	kept := make([]string, 0, len(w.idem.order))
	for _, ref := range w.idem.order {
		if rj, ok := w.idem.rejected[ref.id]; ok && rj.seq == ref.seq { // not forgotten since
			kept = append(kept, ref.id)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(kept)))
	for _, id := range kept {
		rj := w.idem.rejected[id]
		b = appendString(b, id)
		b = appendString(b, rj.accountID)
		b = appendString(b, rj.bodyHash)
		b = appendString(b, string(rj.err.Code))
		b = appendString(b, rj.err.Message)
		keys := make([]string, 0, len(rj.err.Data))
		for k := range rj.err.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = binary.AppendUvarint(b, uint64(len(keys)))
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, rj.err.Data[k])
		}
	}
	b = binary.AppendUvarint(b, w.idem.logPos) // the rejection log position those reflect
	// v4: the compacted idempotency records, fixed-width so a restore reads them at memory speed.
	b = binary.AppendUvarint(b, uint64(len(w.idem.compacted)))
	for k, entry := range w.idem.compacted { // idempotency.go: first position and event count
		b = binary.LittleEndian.AppendUint64(b, k)
		b = binary.LittleEndian.AppendUint64(b, entry)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// snapReader reads the compact section, remembering the first error.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("snapshot truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errors.New("snapshot truncated")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *snapReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errors.New("snapshot truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// restore replaces the in-memory state with a snapshot's.
func (w *Writer) restore(data []byte) (uint64, error) {
	magic := snapshotMagic
	if bytes.HasPrefix(data, []byte(snapshotMagicV3)) {
		magic = snapshotMagicV3
	}
	if !bytes.HasPrefix(data, []byte(magic)) {
		return 0, errors.New("not a writer snapshot")
	}
	hdr := &snapReader{b: data[len(magic):]}
	secLen := hdr.uvarint()
	if hdr.err != nil || secLen > uint64(len(hdr.b)) {
		return 0, errors.New("snapshot truncated")
	}
	sec, rest := hdr.b[:secLen], hdr.b[secLen:]
	dec := gob.NewDecoder(bytes.NewReader(sec))
	var head uint64
	var types []string
	if err := dec.Decode(&head); err != nil {
		return 0, fmt.Errorf("decode snapshot head: %w", err)
	}
	if err := dec.Decode(&types); err != nil {
		return 0, fmt.Errorf("decode snapshot type table: %w", err)
	}
	type decoded struct {
		commands    map[string]*commandRecord
		rejections  map[string]*rejection
		rejectOrder []rejectRef
		rejSeq      uint64
		compacted   map[uint64]uint64
		err         error
	}
	cmds := make(chan decoded, 1)
	go func() {
		var d decoded
		var tail []byte
		if d.commands, tail, d.err = decodeCommands(rest, types); d.err == nil {
			d.rejections, d.rejectOrder, d.rejSeq, tail, d.err = decodeRejections(tail)
		}
		if d.err == nil && magic == snapshotMagic {
			d.compacted, d.err = decodeCompacted(tail)
		}
		cmds <- d
	}()
	accts := map[string]accountSnap{}
	accErr := dec.Decode(&accts)
	dc := <-cmds
	if accErr != nil {
		return 0, fmt.Errorf("decode snapshot accounts: %w", accErr)
	}
	if dc.err != nil {
		return 0, dc.err
	}
	commands := dc.commands
	w.accounts = make(map[string]*account, len(accts))
	w.owners = map[string]string{}
	for id, s := range accts {
		a := &account{state: s.State.WithMaps(), head: s.Head, hash: s.Hash} // gob leaves empty maps nil
		if s.Broken != "" {
			a.broken = &historyBreak{position: s.BrokenAt, reason: s.Broken}
		}
		w.accounts[id] = a
		for _, oid := range ownedIDs(a.state) {
			w.owners[oid] = id
		}
	}
	w.idem.accepted = commands
	w.idem.rejected, w.idem.order, w.idem.logPos = dc.rejections, dc.rejectOrder, dc.rejSeq
	w.idem.orderSeq = uint64(len(dc.rejectOrder))
	w.idem.compacted = dc.compacted
	return head, nil
}

// ownedIDs lists the globally unique ids an account holds (the inverse of createdIDs).
func ownedIDs(a ledger.Account) []string {
	out := make([]string, 0, len(a.Licenses)+len(a.Contracts))
	for id := range a.Licenses {
		out = append(out, "license:"+id)
	}
	for id := range a.Contracts {
		out = append(out, "payg:"+id)
	}
	out = append(out, subscriptionOwned(a)...) // hook (subscriptions.go)
	return out
}

// snapshotNow encodes the state in the writer goroutine and saves it in the background; only
// one save runs at a time.
func (w *Writer) snapshotNow(ctx context.Context, wait bool) {
	if w.opts.Snapshots == nil {
		return
	}
	if w.opts.Owner != nil && !w.opts.Owner.OwnsEverything() {
		// Another node may have written a partition this writer gave up: its copy of those
		// accounts is stale, and a snapshot of it would hide their later events from whoever
		// restores it (their positions lie below the snapshot's head). Only a writer that owns
		// every partition, in the tenures it loaded, saves one.
		w.snapHead = w.head.Load()
		return
	}
	if w.saving != nil {
		select {
		case <-w.saving:
		default:
			if !wait {
				return
			}
			<-w.saving
		}
	}
	start := time.Now()
	if err := w.freshenStale(ctx); err != nil {
		// A snapshot must describe every account up to its head; one left out would come back
		// empty (or unreadable) after a restore. The previous snapshot stays (a restart replays
		// more), and the next one is tried SnapshotEvery events on.
		w.opts.Log.Warn().Err(err).Msg("snapshot skipped: a stale account could not be re-read")
		w.snapHead = w.head.Load()
		return
	}
	head := w.head.Load()
	w.compactCommands()
	data, err := w.encodeSnapshot()
	if err != nil {
		w.opts.Log.Error().Err(err).Msg("snapshot encoding failed")
		return
	}
	w.snapHead = head
	w.idem.sinceSnap = 0
	encoded := time.Since(start)
	done := make(chan struct{})
	w.saving = done
	save := func() {
		defer close(done)
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := w.opts.Snapshots.Save(sctx, snapshotName, data); err != nil {
			w.opts.Log.Error().Err(err).Uint64("position", head).Msg("snapshot save failed")
			return
		}
		w.opts.Log.Info().Uint64("position", head).Int("bytes", len(data)).Dur("encode", encoded).
			Dur("total", time.Since(start)).Msg("snapshot saved")
	}
	if wait {
		save()
		return
	}
	go save()
}

// freshenStale re-reads the accounts a failed or uncertain append left stale.
func (w *Writer) freshenStale(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stale []string
	for id, a := range w.accounts {
		if a.stale {
			stale = append(stale, id)
		}
	}
	for _, id := range stale {
		if err := w.reload(ctx, id); err != nil {
			return fmt.Errorf("account %s: %w", id, err)
		}
	}
	return nil
}

// loadSnapshot restores the newest snapshot if there is a usable one; it returns the position
// to replay from.
func (w *Writer) loadSnapshot(ctx context.Context) uint64 {
	if w.opts.Snapshots == nil {
		return 1
	}
	start := time.Now()
	data, err := w.opts.Snapshots.Load(ctx, snapshotName)
	upgrade := false
	if err == nil && data == nil {
		data, err = w.opts.Snapshots.Load(ctx, snapshotNameV3)
		upgrade = data != nil
	}
	fetched := time.Since(start)
	if err != nil || data == nil {
		if err != nil {
			w.opts.Log.Warn().Err(err).Msg("snapshot unavailable; replaying the whole stream")
		}
		return 1
	}
	head, err := w.restore(data)
	if err != nil {
		w.opts.Log.Warn().Err(err).Msg("snapshot unreadable; replaying the whole stream")
		w.accounts, w.idem.accepted, w.owners, w.idem.compacted = map[string]*account{}, map[string]*commandRecord{}, map[string]string{}, nil
		return 1
	}
	w.head.Store(head)
	w.snapHead = head
	if upgrade {
		w.snapHead = 0 // write the current format soon (at once past SnapshotEvery, else at shutdown)
	}
	w.opts.Log.Info().Uint64("position", head).Int("bytes", len(data)).Dur("fetch", fetched).
		Dur("decode", time.Since(start)-fetched).Int("accounts", len(w.accounts)).Int("commands", len(w.idem.accepted)).
		Int("commands_compacted", len(w.idem.compacted)).
		Msg("snapshot restored")
	return head + 1
}

// decodeCommands reads the compact idempotency section of a snapshot.
func decodeCommands(b []byte, types []string) (map[string]*commandRecord, []byte, error) {
	r := &snapReader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, nil, errors.New("snapshot: implausible command count")
	}
	commands := make(map[string]*commandRecord, n)
	interned := map[string]string{}
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.str()
		acct := r.str()
		if k, ok := interned[acct]; ok {
			acct = k // share the account id string instead of one copy per command
		} else {
			interned[acct] = acct
		}
		rec := &commandRecord{accountID: acct, bodyHash: r.str()}
		rec.result.AccountID = rec.accountID
		ne := r.uvarint()
		if ne > ledger.MaxEventsPerCommand {
			return nil, nil, errors.New("snapshot: implausible event count")
		}
		rec.result.Events = make([]EventRef, ne)
		for j := range rec.result.Events {
			c := r.byte()
			if int(c) >= len(types) {
				return nil, nil, errors.New("snapshot: unknown event type code")
			}
			rec.result.Events[j] = EventRef{Type: types[c], Version: r.uvarint(), Position: r.uvarint()}
		}
		if ne > 0 {
			last := rec.result.Events[ne-1]
			rec.result.Version, rec.result.Position = last.Version, last.Position
		}
		commands[id] = rec
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	return commands, r.b, nil
}

// decodeCompacted reads the v4 section of compacted idempotency records.
func decodeCompacted(b []byte) (map[uint64]uint64, error) {
	r := &snapReader{b: b}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b))/16 {
		return nil, errors.New("snapshot: compacted section truncated")
	}
	out := make(map[uint64]uint64, n)
	for i := uint64(0); i < n; i++ {
		e := r.b[i*16:]
		entry := binary.LittleEndian.Uint64(e[8:])
		if _, events := splitEntry(entry); events == 0 {
			// Only a build from before entries carried their event count wrote these; replaying the
			// stream is safer than a retry that could not find its command.
			return nil, errors.New("snapshot: compacted entry without an event count")
		}
		out[binary.LittleEndian.Uint64(e)] = entry
	}
	return out, nil
}

// decodeRejections reads the remembered rejections (absent in snapshots written before them)
// and returns the bytes after them.
func decodeRejections(b []byte) (map[string]*rejection, []rejectRef, uint64, []byte, error) {
	out, order := map[string]*rejection{}, []rejectRef{}
	if len(b) == 0 {
		return out, order, 0, nil, nil
	}
	r := &snapReader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, nil, 0, nil, errors.New("snapshot: implausible rejection count")
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.str()
		rj := &rejection{accountID: r.str(), bodyHash: r.str()}
		e := &ledger.Error{Code: ledger.Code(r.str()), Message: r.str()}
		if nd := r.uvarint(); nd > 0 && nd <= uint64(len(r.b)) {
			e.Data = make(map[string]string, nd)
			for k := uint64(0); k < nd; k++ {
				key := r.str()
				e.Data[key] = r.str()
			}
		}
		rj.err = e
		rj.seq = uint64(len(order) + 1)
		out[id] = rj
		order = append(order, rejectRef{id: id, seq: rj.seq})
	}
	var seq uint64
	if len(r.b) > 0 {
		seq = r.uvarint()
	}
	if r.err != nil {
		return nil, nil, 0, nil, r.err
	}
	return out, order, seq, r.b, nil
}
