package writer

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/creditledger/creditledger/ledger"
)

// The body shared by every snapshot format: the length of a gob section (head, type table,
// accounts and, written since snapshots name their history, the stamp: snapident.go), the gob
// section, then the compact sections: full idempotency records, remembered rejections (oldest
// first) with the rejection log position they reflect, (v4 on) the compacted idempotency entries,
// and (v5, written since rejections are compacted) the compacted rejection entries
// (rejcompact.go). The length lets a restore decode the gob section and the
// compact sections on two cores at once.
//
// A section added at the end is optional: a snapshot that ends before it (written by an earlier
// build) has none, and an earlier build reads a snapshot with it, ignoring it (that build then
// forgets those rejections, as it always did past its bound).

// snapView is the part of a snapshot capture (snapcapture.go) one snapshot holds: every
// account's (a whole snapshot) or one partition's.
type snapView struct {
	accts      map[string]accountSnap
	cmds       []cmdSnap // full accepted records
	rejs       []rejSnap // remembered rejections, oldest first
	entries    []uint64  // keys of compacted entries
	rejEntries []uint64  // keys of compacted rejection entries
}

// wholeView is the view of the entire state.
const wholeView = -1

// views splits a capture into views. Whole: one view (wholeView) of everything. Otherwise one
// view per partition in want (a hand-over snapshots one partition: the others are not copied),
// and under wholeView the compacted entries whose partition is unknown (legacy entries,
// partsnap.go). It reads only the capture: it runs beside the writer goroutine.
func (c *snapCapture) views(whole bool, want []int) map[int]*snapView {
	out := map[int]*snapView{}
	var wanted []bool
	if !whole && c.count > 0 {
		wanted = make([]bool, c.count)
		for _, p := range want {
			wanted[p] = true
		}
	}
	view := func(p int) *snapView {
		if whole {
			p = wholeView
		} else if p != wholeView && (wanted == nil || p < 0 || !wanted[p]) {
			return nil
		}
		v := out[p]
		if v == nil {
			v = &snapView{accts: map[string]accountSnap{}}
			out[p] = v
		}
		return v
	}
	for _, a := range c.accts {
		if v := view(c.partitionOf(a.id)); v != nil {
			v.accts[a.id] = a.snap
		}
	}
	for _, cmd := range c.cmds {
		if v := view(c.partitionOf(cmd.rec.accountID)); v != nil {
			v.cmds = append(v.cmds, cmd)
		}
	}
	for _, rj := range c.rejs {
		if v := view(c.partitionOf(rj.accountID)); v != nil {
			v.rejs = append(v.rejs, rj)
		}
	}
	for k, entry := range c.compacted {
		p, ok := entryPartition(entry)
		if !ok {
			p = wholeView
		}
		if v := view(p); v != nil {
			v.entries = append(v.entries, k)
		}
	}
	for k, entry := range c.rejCompact {
		p, ok := entryPartition(entry)
		if !ok && !whole {
			continue // no partition (restored from a snapshot of another partition count): not split
		}
		if v := view(p); v != nil {
			v.rejEntries = append(v.rejEntries, k)
		}
	}
	return out
}

// partitionOf is the account's partition (-1 when the writer knows no partition count).
func (w *Writer) partitionOf(accountID string) int {
	return partitionOf(accountID, w.opts.Partitions.Count)
}

func partitionOf(accountID string, count int) int {
	if count <= 0 {
		return -1
	}
	return ledger.PartitionOf(accountID, count)
}

// appendBody appends the snapshot body of a view of the capture.
func (c *snapCapture) appendBody(b []byte, v *snapView) ([]byte, error) {
	var sec bytes.Buffer
	enc := gob.NewEncoder(&sec)
	if err := enc.Encode(c.head); err != nil {
		return nil, fmt.Errorf("encode snapshot head: %w", err)
	}
	// The snapshot carries its own table of event-type codes, so a build that registers more
	// types still reads an older snapshot correctly.
	types, codes := typeCodes()
	if err := enc.Encode(types); err != nil {
		return nil, fmt.Errorf("encode snapshot type table: %w", err)
	}
	if err := enc.Encode(v.accts); err != nil {
		return nil, fmt.Errorf("encode snapshot accounts: %w", err)
	}
	if err := enc.Encode(snapStamp{Fingerprint: c.fingerprint}); err != nil { // snapident.go
		return nil, fmt.Errorf("encode snapshot stamp: %w", err)
	}
	b = binary.AppendUvarint(b, uint64(sec.Len()))
	b = append(b, sec.Bytes()...)
	b = binary.AppendUvarint(b, uint64(len(v.cmds)))
	for _, cmd := range v.cmds {
		rec := &cmd.rec
		b = appendString(b, cmd.id)
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
	b = binary.AppendUvarint(b, uint64(len(v.rejs)))
	for _, rj := range v.rejs {
		b = appendString(b, rj.id)
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
	b = binary.AppendUvarint(b, c.logPos) // the rejection log position those reflect
	b = appendEntries(b, v.entries, c.compacted)
	return appendEntries(b, v.rejEntries, c.rejCompact), nil
}

// appendEntries appends a compacted section (of commands or rejections): fixed-width, so a
// restore reads it at memory speed.
func appendEntries(b []byte, keys []uint64, compacted map[uint64]uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint64(b, k)
		b = binary.LittleEndian.AppendUint64(b, compacted[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// snapState is a decoded snapshot, before it is installed in a writer.
type snapState struct {
	// format is 3, 4 or 5; parts the partition count its compacted entries refer to (0: none);
	// part the partition of a partition snapshot (wholeView for a whole one); legacy names the
	// object of the legacy entries a partition snapshot relies on ("" for none).
	format int
	parts  int
	part   int
	legacy string
	head   uint64
	bytes  int
	// name is the object it was read from; fingerprint the store's at head when it was taken (nil:
	// an older build's, unchecked; snapident.go).
	name        string
	fingerprint []byte

	accounts   map[string]accountSnap
	commands   map[string]*commandRecord
	rejections map[string]*rejection
	order      []rejectRef
	logPos     uint64
	compacted  map[uint64]uint64
	rejCompact map[uint64]uint64
}

// decodeSnapshot reads a whole snapshot (v3, v4, v5) or a partition snapshot (v5).
func decodeSnapshot(data []byte) (*snapState, error) {
	st := &snapState{part: wholeView, bytes: len(data)}
	var hdr *snapReader
	switch {
	case bytes.HasPrefix(data, []byte(snapshotMagic)):
		st.format, hdr = 5, &snapReader{b: data[len(snapshotMagic):]}
		st.parts = int(hdr.uvarint())
	case bytes.HasPrefix(data, []byte(partitionMagic)):
		st.format, hdr = 5, &snapReader{b: data[len(partitionMagic):]}
		st.parts, st.part, st.legacy = int(hdr.uvarint()), int(hdr.uvarint()), hdr.str()
		if hdr.err == nil && (st.parts <= 0 || st.parts > ledger.MaxPartitions || st.part < 0 || st.part >= st.parts) {
			return nil, errors.New("snapshot: partition out of range")
		}
	case bytes.HasPrefix(data, []byte(snapshotMagicV4)):
		st.format, hdr = 4, &snapReader{b: data[len(snapshotMagicV4):]}
	case bytes.HasPrefix(data, []byte(snapshotMagicV3)):
		st.format, hdr = 3, &snapReader{b: data[len(snapshotMagicV3):]}
	default:
		return nil, errors.New("not a writer snapshot")
	}
	if hdr.err != nil || st.parts > ledger.MaxPartitions {
		return nil, errors.New("snapshot header truncated")
	}
	return st, st.decodeBody(hdr)
}

// decodeBody reads the body: the gob section on this goroutine, the compact ones on another.
func (st *snapState) decodeBody(hdr *snapReader) error {
	secLen := hdr.uvarint()
	if hdr.err != nil || secLen > uint64(len(hdr.b)) {
		return errors.New("snapshot truncated")
	}
	sec, rest := hdr.b[:secLen], hdr.b[secLen:]
	dec := gob.NewDecoder(bytes.NewReader(sec))
	var types []string
	if err := dec.Decode(&st.head); err != nil {
		return fmt.Errorf("decode snapshot head: %w", err)
	}
	if err := dec.Decode(&types); err != nil {
		return fmt.Errorf("decode snapshot type table: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		var tail []byte
		var err error
		if st.commands, tail, err = decodeCommands(rest, types); err == nil {
			st.rejections, st.order, st.logPos, tail, err = decodeRejections(tail)
		}
		if err == nil && st.format >= 4 {
			st.compacted, tail, err = decodeCompacted(tail, st.format)
		}
		if err == nil && st.format >= 5 {
			st.rejCompact, err = decodeRejCompact(tail)
		}
		done <- err
	}()
	st.accounts = map[string]accountSnap{}
	accErr := dec.Decode(&st.accounts)
	if err := <-done; err != nil {
		return err
	}
	if accErr != nil {
		return fmt.Errorf("decode snapshot accounts: %w", accErr)
	}
	var stamp snapStamp
	if err := dec.Decode(&stamp); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an older build's
		return fmt.Errorf("decode snapshot stamp: %w", err)
	}
	st.fingerprint = stamp.Fingerprint
	return nil
}

// account is the in-memory account a snapshot restores.
func (s accountSnap) account() *account {
	a := &account{state: s.State.WithMaps(), head: s.Head, hash: s.Hash, fromSnap: true} // gob leaves empty maps nil
	if s.Broken != "" {
		a.broken = &historyBreak{position: s.BrokenAt, reason: s.Broken}
	}
	return a
}

// snapReader reads the compact sections, remembering the first error.
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

// decodeCompacted reads the section of compacted idempotency entries; a v4 one is converted to
// the current form (with an unknown partition).
func decodeCompacted(b []byte, format int) (map[uint64]uint64, []byte, error) {
	r := &snapReader{b: b}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b))/16 {
		return nil, nil, errors.New("snapshot: compacted section truncated")
	}
	out := make(map[uint64]uint64, n)
	for i := uint64(0); i < n; i++ {
		e := r.b[i*16:]
		entry := binary.LittleEndian.Uint64(e[8:])
		ok := true
		if format == 4 {
			entry, ok = fromV4Entry(entry)
		}
		if _, events := splitEntry(entry); events == 0 || !ok {
			// Only a build from before entries carried their event count wrote an entry without
			// one (and none writes one out of range): replaying the stream is safer than a retry
			// that could not find its command.
			return nil, nil, errors.New("snapshot: compacted entry without an event count, or out of range")
		}
		out[binary.LittleEndian.Uint64(e)] = entry
	}
	return out, r.b[n*16:], nil
}

// decodeRejCompact reads the section of compacted rejection entries: none when the snapshot ends
// before it (written by a build that did not compact rejections).
func decodeRejCompact(b []byte) (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	if len(b) == 0 {
		return out, nil
	}
	r := &snapReader{b: b}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b))/16 || uint64(len(r.b)) != n*16 {
		return nil, errors.New("snapshot: compacted rejection section truncated")
	}
	for i := uint64(0); i < n; i++ {
		e := r.b[i*16:]
		entry := binary.LittleEndian.Uint64(e[8:])
		if splitRejectEntry(entry).Position == 0 {
			return nil, errors.New("snapshot: compacted rejection entry without a position")
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
