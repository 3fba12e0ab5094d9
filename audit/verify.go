package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/creditledger/creditledger/events"
	"github.com/creditledger/creditledger/ledger/jetstore"
)

// Finding kinds: stable names an auditor's tooling can branch on.
const (
	KindMissing             = "missing_messages"
	KindUndecodable         = "undecodable"
	KindWrongSubject        = "wrong_subject"
	KindHashMismatch        = "hash_mismatch"
	KindVersionRepeat       = "version_repeat"
	KindVersionGap          = "version_gap"
	KindBrokenLink          = "broken_link"
	KindCheckpointMalformed = "checkpoint_malformed"
	KindCheckpointSignature = "checkpoint_signature"
	KindCheckpointChain     = "checkpoint_chain"
	KindCheckpointMismatch  = "checkpoint_mismatch"
	// KindCheckpointInconsistent: a checkpoint's tree does not extend the one before it (no
	// RFC 6962 consistency proof leads from the earlier signed root to the later one).
	KindCheckpointInconsistent = "checkpoint_inconsistent"
	KindTruncated              = "history_truncated"
	// KindForeignFence: a message on a partition's fence subject (ledger.fence.<p>) that is not
	// that partition's ownership record (docs/FORMAT.md §8): not one in its canonical form,
	// another partition's, or one counting other partitions than the stream.
	KindForeignFence = "foreign_fence"
)

// DefaultMaxFindings bounds the findings a verification keeps (it counts them all).
const DefaultMaxFindings = 100

// Finding is one place where the stored history breaks the ledger's invariants.
type Finding struct {
	Kind string `json:"kind"`
	// Position is the stream position of the broken event (the first missing one for a gap, the
	// checkpoint's position for a checkpoint finding).
	Position  uint64 `json:"position"`
	AccountID string `json:"account_id,omitempty"`
	Version   uint64 `json:"version,omitempty"`
	// LinkedPosition is the other event a broken link involves: the predecessor whose hash the
	// event's prev_hash does not match.
	LinkedPosition uint64 `json:"linked_position,omitempty"`
	// Checkpoint is the checkpoint's number for checkpoint findings.
	Checkpoint uint64 `json:"checkpoint,omitempty"`
	Reason     string `json:"reason"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("position %d", f.Position)
	if f.AccountID != "" {
		s += fmt.Sprintf(", account %s", f.AccountID)
	}
	if f.Version != 0 {
		s += fmt.Sprintf(", version %d", f.Version)
	}
	if f.Checkpoint != 0 {
		s += fmt.Sprintf(", checkpoint %d", f.Checkpoint)
	}
	return fmt.Sprintf("%s (%s): %s", s, f.Kind, f.Reason)
}

// span names one or a range of numbered things: "version 3 is", "versions 3 to 5 are".
func span(what string, from, to uint64) string {
	if from == to {
		return fmt.Sprintf("%s %d is", what, from)
	}
	return fmt.Sprintf("%ss %d to %d are", what, from, to)
}

// accountHead is the last accepted event of one account.
type accountHead struct {
	leaf     Leaf
	position uint64
	hash     [32]byte
	dirty    bool
}

// Chain follows the stream message by message and checks every invariant that can be checked
// locally: contiguous positions, decodable envelopes filed under their own account's subject (in
// the store's scheme and, partitioned, the account's partition: SetSubjects), hashes that match
// their content, per-account versions 1..n and prev_hash links from events.ZeroHash. It
// keeps every account's head for the accounts Merkle root, and a running digest over every stored
// byte in stream order (the log digest), so re-ordering across accounts is caught by checkpoints.
//
// The ledger's checkpoint publisher signs what a Chain computes; auditors recompute it.
type Chain struct {
	heads    map[string]*accountHead
	ids      []string
	unsorted bool
	position uint64
	events   uint64
	log      [32]byte
	// tree is the log tree over every stored message (format-2 checkpoints sign its root).
	tree *LogTree
	// partial is set for a one-account chain: positions are not contiguous there.
	partial bool
	// partitions is the stream's partition count an ownership record must name (0: unknown);
	// fences counts the ownership records applied.
	partitions int
	fences     uint64
	// subjects checks each event against its own subject.
	subjects subjectCheck
}

// NewChain starts a chain at the beginning of the stream.
func NewChain() *Chain { return &Chain{heads: map[string]*accountHead{}, tree: NewLogTree()} }

// Tree is the log tree over every message applied, in stream order.
func (c *Chain) Tree() *LogTree { return c.tree }

// Position is the last position applied.
func (c *Chain) Position() uint64 { return c.position }

// SetPartitions sets the stream's partition count (jetstore.Partitions), which every ownership
// record must name; 0, the default, leaves it unchecked.
func (c *Chain) SetPartitions(n int) { c.partitions = n }

// SetSubjects sets the store's event subjects (jetstore.SubjectsOf: its scheme and partition
// count), so that every event must be stored under exactly its account's subject (in a
// partitioned store, under its account's partition) and every ownership record must name the
// partition count. Without it an event's subject need only name its account, in the scheme of
// the chain's first event.
func (c *Chain) SetSubjects(s jetstore.Subjects) {
	c.subjects.set(s)
	c.partitions = s.Partitions
}

// Events is the number of messages applied that are not partition ownership records.
func (c *Chain) Events() uint64 { return c.events }

// Fences is the number of partition ownership records applied.
func (c *Chain) Fences() uint64 { return c.fences }

// Accounts is the number of accounts with at least one accepted event.
func (c *Chain) Accounts() int { return len(c.heads) }

// LogDigest is the running digest after the last message applied (ZeroHash before any).
func (c *Chain) LogDigest() string { return hexHash(c.log) }

// Head is the account's last accepted event and its position.
func (c *Chain) Head(accountID string) (Leaf, uint64, bool) {
	h, ok := c.heads[accountID]
	if !ok {
		return Leaf{}, 0, false
	}
	return h.leaf, h.position, true
}

// leafHashes returns every account's leaf hash, sorted by account id, and the sorted ids.
func (c *Chain) leafHashes() ([]string, [][32]byte) {
	if c.unsorted {
		sort.Strings(c.ids)
		c.unsorted = false
	}
	out := make([][32]byte, len(c.ids))
	for i, id := range c.ids {
		h := c.heads[id]
		if h.dirty {
			h.hash, h.dirty = LeafHash(h.leaf), false
		}
		out[i] = h.hash
	}
	return c.ids, out
}

// AccountsRoot is the Merkle root over every account's head, sorted by account id.
func (c *Chain) AccountsRoot() string {
	_, leaves := c.leafHashes()
	return hexHash(MerkleRoot(leaves))
}

// logStep is the log digest's chaining: SHA-256(previous || position || len(subject) || subject ||
// SHA-256(stored bytes)).
func logStep(prev [32]byte, m Message) [32]byte {
	h := sha256.New()
	h.Write([]byte("creditledger-log-v1"))
	h.Write(prev[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], m.Position)
	h.Write(b[:])
	binary.BigEndian.PutUint16(b[:2], uint16(len(m.Subject)))
	h.Write(b[:2])
	h.Write([]byte(m.Subject))
	sum := sha256.Sum256(m.Data)
	h.Write(sum[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Apply checks one stored message and advances the chain; it returns what the message breaks
// (nothing for a sound event or ownership record). Every message is a leaf of the log tree and a
// step of the log digest; an ownership record (on ledger.fence.<p>) is part of no account's
// chain. An event with a wrong version is not taken as its account's head,
// so the genuine events after a forged or replayed one still check against the real chain; any
// other broken event is, so that one edit yields one finding rather than a cascade.
func (c *Chain) Apply(m Message) []Finding {
	var out []Finding
	if !c.partial && m.Position != c.position+1 {
		out = append(out, Finding{Kind: KindMissing, Position: c.position + 1,
			Reason: span("position", c.position+1, m.Position-1) + " missing from the stream (deleted)"})
	}
	c.position = m.Position
	c.log = logStep(c.log, m)
	if !c.partial {
		c.tree.Append(LogLeafHash(m.Data))
	}
	check := c.check
	if m.IsFence() {
		check = c.checkFence
	} else {
		c.events++
	}
	if f, ok := check(m); !ok {
		return append(out, f)
	}
	return out
}

func (c *Chain) check(m Message) (Finding, bool) {
	ev, err := events.Decode(m.Data)
	if err != nil {
		return Finding{Kind: KindUndecodable, Position: m.Position, AccountID: m.AccountID(), Reason: err.Error()}, false
	}
	f := Finding{Position: m.Position, AccountID: ev.AccountID, Version: ev.Version}
	if reason := c.subjects.check(m.Subject, ev.AccountID); reason != "" {
		f.Kind, f.Reason = KindWrongSubject, reason
		return f, false
	}
	h := c.heads[ev.AccountID]
	var want uint64 = 1
	prev := events.ZeroHash
	if h != nil {
		want, prev = h.leaf.Version+1, h.leaf.Hash
	}
	switch {
	case ev.Version < want:
		f.Kind, f.Reason = KindVersionRepeat, fmt.Sprintf("version %d repeats: the account is already at version %d (position %d)", ev.Version, want-1, h.position)
		return f, false
	case ev.Version > want:
		if h != nil {
			f.LinkedPosition = h.position
		}
		f.Kind, f.Reason = KindVersionGap, fmt.Sprintf("version %d where %d was expected: %s missing (removed, or re-ordered after this event)", ev.Version, want, span("version", want, ev.Version-1))
		return f, false
	}
	ok := true
	if computed, err := events.StoredHash(m.Data, &ev.Envelope); err != nil {
		f.Kind, f.Reason, ok = KindHashMismatch, fmt.Sprintf("stored hash %s cannot be recomputed: %v", ev.Hash, err), false
	} else if computed != ev.Hash {
		f.Kind, f.Reason, ok = KindHashMismatch, fmt.Sprintf("stored hash %s does not match the event's content (hashes to %s under rule %s): the event was altered",
			ev.Hash, computed, ruleName(ev.HashRule)), false
	} else if ev.PrevHash != prev {
		f.Kind, ok = KindBrokenLink, false
		if h == nil {
			f.Reason = fmt.Sprintf("prev_hash %s of the account's first event is not the zero hash", ev.PrevHash)
		} else {
			f.LinkedPosition = h.position
			f.Reason = fmt.Sprintf("prev_hash %s does not match the hash %s of version %d at position %d: version %d was altered after this event was chained to it, or this event was forged",
				ev.PrevHash, prev, want-1, h.position, want-1)
		}
	}
	c.accept(ev.AccountID, Leaf{AccountID: ev.AccountID, Version: ev.Version, Hash: ev.Hash}, m.Position)
	return f, ok
}

func ruleName(r string) string {
	if r == events.HashRuleLegacy {
		return "legacy"
	}
	return r
}

func (c *Chain) accept(accountID string, l Leaf, position uint64) {
	h := c.heads[accountID]
	if h == nil {
		h = &accountHead{}
		c.heads[accountID] = h
		c.ids = append(c.ids, accountID)
		c.unsorted = true
	}
	h.leaf, h.position, h.dirty = l, position, true
}

// VerifyOptions say what to verify and which checkpoint keys to trust.
type VerifyOptions struct {
	// AccountID limits verification to one account's chain (checkpoints are then not checked:
	// their roots cover every account).
	AccountID string
	// Trusted is a checkpoint the auditor obtained earlier and trusts; the history up to its
	// position must reproduce its roots exactly.
	Trusted *Checkpoint
	// TrustedLog is a format-2 checkpoint the auditor trusts (ReadCheckpointFile).
	TrustedLog *LogCheckpoint
	// PublicKeys pin the keys checkpoints must be signed with. Without them the trusted
	// checkpoint's key is pinned, or else the first stored checkpoint's key (trust on first use).
	PublicKeys []ed25519.PublicKey
	// MaxFindings bounds the findings kept (default DefaultMaxFindings).
	MaxFindings int
}

// Report is the outcome of a verification.
type Report struct {
	OK bool `json:"ok"`
	// Events is the number of messages read that are not partition ownership records, Fences
	// the number that are (Events + Fences messages in all); HeadPosition the last position.
	Events       uint64 `json:"events"`
	Fences       uint64 `json:"fences"`
	Accounts     int    `json:"accounts"`
	HeadPosition uint64 `json:"head_position"`
	// AccountsRoot is the head digest: the Merkle root over every account's chain head at
	// HeadPosition, comparable with a checkpoint's accounts_root. LogDigest covers every stored byte.
	AccountsRoot string `json:"accounts_root,omitempty"`
	LogDigest    string `json:"log_digest,omitempty"`
	// LogRoot is the root of the log tree (RFC 6962, over every stored message) at HeadPosition:
	// what a format-2 checkpoint of this size signs.
	LogRoot string `json:"log_root,omitempty"`
	// Checkpoints is the number of stored checkpoints checked; KeyIDs the keys that signed them.
	Checkpoints   int       `json:"checkpoints"`
	KeyIDs        []string  `json:"key_ids,omitempty"`
	KeyPinned     bool      `json:"key_pinned"`
	Trusted       uint64    `json:"trusted_checkpoint,omitempty"`
	Warnings      []string  `json:"warnings,omitempty"`
	Findings      []Finding `json:"findings,omitempty"`
	FindingsTotal int       `json:"findings_total"`
}

// First is the earliest finding in stream order.
func (r Report) First() (Finding, bool) {
	if len(r.Findings) == 0 {
		return Finding{}, false
	}
	return r.Findings[0], true
}

// findings collects findings up to a bound, counting the rest.
type findings struct {
	max   int
	list  []Finding
	total int
}

func (fs *findings) add(f ...Finding) {
	for _, x := range f {
		fs.total++
		if len(fs.list) < fs.max {
			fs.list = append(fs.list, x)
		}
	}
}

// Verify reads the whole stream (or one account) and every stored checkpoint, and reports what
// breaks. The error is for failures to read; a tampered history is a Report with findings.
func Verify(ctx context.Context, src *Source, opts VerifyOptions) (Report, error) {
	if opts.MaxFindings <= 0 {
		opts.MaxFindings = DefaultMaxFindings
	}
	var rep Report
	fs := &findings{max: opts.MaxFindings}
	info, err := src.Info(ctx)
	if err != nil {
		return rep, err
	}
	if err := jetstore.CheckStreamConfig(info.Config); err != nil {
		rep.Warnings = append(rep.Warnings, "stream protection: "+err.Error())
	}
	chain := NewChain()
	chain.partial = opts.AccountID != ""
	if subjects, err := jetstore.SubjectsOf(info.Config); err == nil {
		chain.SetSubjects(subjects)
	} else if n, perr := jetstore.Partitions(info.Config); perr == nil {
		chain.SetPartitions(n)
		rep.Warnings = append(rep.Warnings, "event subject scheme unknown, events checked only against the account their subject names: "+err.Error())
	} else {
		rep.Warnings = append(rep.Warnings, "partition count unknown, not checked in ownership records or event subjects: "+err.Error())
	}
	var cps *checkpointCheck
	if opts.AccountID == "" {
		if cps, err = newCheckpointCheck(ctx, src, opts, &rep, fs); err != nil {
			return rep, err
		}
	} else {
		rep.Warnings = append(rep.Warnings, "checkpoints are not checked when one account is verified: their roots cover every account")
	}
	head, err := src.Scan(ctx, Filter{AccountID: opts.AccountID}, func(m Message) error {
		if cps != nil {
			cps.before(m.Position, chain)
		}
		fs.add(chain.Apply(m)...)
		return nil
	})
	if err != nil {
		return rep, err
	}
	if opts.AccountID == "" && chain.Position() < head {
		fs.add(Finding{Kind: KindMissing, Position: chain.Position() + 1,
			Reason: span("position", chain.Position()+1, head) + " missing from the end of the stream (deleted)"})
	}
	if cps != nil {
		cps.finish(chain)
	}
	rep.Events, rep.Fences, rep.Accounts, rep.HeadPosition = chain.Events(), chain.Fences(), chain.Accounts(), chain.Position()
	if opts.AccountID == "" {
		rep.HeadPosition = max(head, chain.Position())
		rep.AccountsRoot, rep.LogDigest = chain.AccountsRoot(), chain.LogDigest()
		rep.LogRoot = hexHash(chain.Tree().Root())
	}
	attributeMissing(fs.list)
	sort.SliceStable(fs.list, func(i, j int) bool { return fs.list[i].Position < fs.list[j].Position })
	rep.Findings, rep.FindingsTotal = fs.list, fs.total
	rep.OK = fs.total == 0
	return rep, nil
}

// attributeMissing names the account of a hole in the stream when the neighbours allow it: an
// account whose versions skip across the hole (its event before the hole is version n, its event
// after it n+2 or later) held the missing message. A hole only one account skips across is that
// account's; one several skip across names them all in the reason.
func attributeMissing(list []Finding) {
	for i := range list {
		m := &list[i]
		if m.Kind != KindMissing || m.AccountID != "" {
			continue
		}
		var owners []string
		seen := map[string]bool{} // an account's later events skip from the same event: name it once
		for _, g := range list {
			if g.Kind == KindVersionGap && g.LinkedPosition < m.Position && m.Position < g.Position && !seen[g.AccountID] {
				seen[g.AccountID] = true
				owners = append(owners, fmt.Sprintf("%s (version %d at position %d follows position %d)", g.AccountID, g.Version, g.Position, g.LinkedPosition))
				if len(owners) == 1 {
					m.AccountID = g.AccountID
				}
			}
		}
		switch {
		case len(owners) == 1:
			m.Reason += "; it held an event of account " + owners[0]
		case len(owners) > 1:
			m.AccountID = ""
			m.Reason += "; the versions of several accounts skip across it: " + strings.Join(owners, ", ")
		}
	}
}
