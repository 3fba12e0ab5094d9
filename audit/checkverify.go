package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"

	"github.com/creditledger/creditledger/events"
)

// checkpointCheck checks the stored checkpoints (and a trusted one) against a verification's
// chain as the scan passes their positions: format-1 checkpoints by their numbering, prev links,
// signatures and both roots; format-2 ones by their signatures, their log tree root, and an
// RFC 6962 consistency proof from the format-2 checkpoint before each.
type checkpointCheck struct {
	rep     *Report
	fs      *findings
	pending []pendingCheckpoint
	// lastLog is the last stored format-2 checkpoint checked; the chain's tree is marked at
	// its size, so the next one is proved consistent with it.
	lastLog    *LogCheckpoint
	lastLogSeq uint64
}

type pendingCheckpoint struct {
	cp  Checkpoint
	log *LogCheckpoint
	seq uint64
	// trusted is the auditor's own copy.
	trusted bool
	// since is the position of the checkpoint before it: the history up to since was
	// confirmed by an earlier one, so a difference lies after it.
	since uint64
}

func (pc pendingCheckpoint) position() uint64 {
	if pc.log != nil {
		return pc.log.Size
	}
	return pc.cp.Position
}

func newCheckpointCheck(ctx context.Context, src *Source, opts VerifyOptions, rep *Report, fs *findings) (*checkpointCheck, error) {
	cc := &checkpointCheck{rep: rep, fs: fs}
	stored, err := src.Checkpoints(ctx)
	if errors.Is(err, ErrNoCheckpoints) {
		rep.Warnings = append(rep.Warnings, "no "+CheckpointStream+" stream: there are no signed checkpoints to check")
	} else if err != nil {
		return nil, err
	}
	keys := opts.PublicKeys
	rep.KeyPinned = len(keys) > 0 || opts.Trusted != nil
	if opts.Trusted != nil {
		cc.addTrusted(*opts.Trusted, keys, stored)
		if len(keys) == 0 {
			if k, err := opts.Trusted.Key(); err == nil {
				keys = []ed25519.PublicKey{k}
			}
		}
	}
	if len(keys) == 0 {
		keys = firstUseKeys(stored, rep)
	}
	if opts.TrustedLog != nil {
		cc.addTrustedLog(*opts.TrustedLog, keys, stored)
	}
	cc.addStored(stored, keys)
	sort.SliceStable(cc.pending, func(i, j int) bool { return cc.pending[i].position() < cc.pending[j].position() })
	return cc, nil
}

// FirstUseKeys is the key of the first stored checkpoint that names one (a format-1 public_key,
// or the verifier key stored beside a format-2 one), trusted on first use, and the warning that
// says so; none when no checkpoint names a key.
func FirstUseKeys(stored []StoredCheckpoint) ([]ed25519.PublicKey, string) {
	var rep Report
	keys := firstUseKeys(stored, &rep)
	if len(keys) == 0 {
		return nil, ""
	}
	return keys, rep.Warnings[0]
}

func firstUseKeys(stored []StoredCheckpoint, rep *Report) []ed25519.PublicKey {
	for _, s := range stored {
		if s.Err != nil {
			continue
		}
		if s.Log == nil {
			if k, err := s.Checkpoint.Key(); err == nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("checkpoint key not pinned: trusting key %s of the first checkpoint; pass --public-key to pin it", KeyID(k)))
				return []ed25519.PublicKey{k}
			}
			continue
		}
		if _, k, err := ParseVerifierKey(s.VerifierKey); err == nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("checkpoint key not pinned: trusting key %s stored with checkpoint %d; pass --public-key to pin it", s.VerifierKey, s.Seq))
			return []ed25519.PublicKey{k}
		}
	}
	return nil
}

func (cc *checkpointCheck) addTrusted(t Checkpoint, keys []ed25519.PublicKey, stored []StoredCheckpoint) {
	cc.rep.Trusted = t.Seq
	if err := t.VerifySignature(keys); err != nil {
		cc.fs.add(Finding{Kind: KindCheckpointSignature, Position: t.Position, Checkpoint: t.Seq, Reason: "trusted checkpoint: " + err.Error()})
		return
	}
	cc.pending = append(cc.pending, pendingCheckpoint{cp: t, seq: t.Seq, trusted: true})
	for _, s := range stored {
		if s.Seq == t.Seq {
			if s.Err != nil || s.Log != nil || s.Checkpoint.Digest() != t.Digest() || s.Checkpoint.Signature != t.Signature {
				cc.fs.add(Finding{Kind: KindCheckpointChain, Position: t.Position, Checkpoint: t.Seq,
					Reason: fmt.Sprintf("stored checkpoint %d differs from the trusted copy", t.Seq)})
			}
			return
		}
	}
	cc.fs.add(Finding{Kind: KindCheckpointChain, Position: t.Position, Checkpoint: t.Seq,
		Reason: fmt.Sprintf("trusted checkpoint %d is missing from the %s stream", t.Seq, CheckpointStream)})
}

// addTrustedLog checks a trusted format-2 checkpoint: signed by a pinned key, its root
// reproduced by the stream, and a stored checkpoint of its size with the same root.
func (cc *checkpointCheck) addTrustedLog(t LogCheckpoint, keys []ed25519.PublicKey, stored []StoredCheckpoint) {
	lc, err := ParseLogCheckpoint(t.Note, keys)
	if err != nil {
		cc.fs.add(Finding{Kind: KindCheckpointSignature, Position: t.Size, Reason: "trusted checkpoint: " + err.Error()})
		return
	}
	cc.pending = append(cc.pending, pendingCheckpoint{log: &lc, trusted: true})
	for _, s := range stored {
		if s.Log != nil && s.Log.Size == lc.Size && s.Log.Root == lc.Root {
			cc.rep.Trusted = s.Seq
			return
		}
	}
	cc.fs.add(Finding{Kind: KindCheckpointChain, Position: lc.Size,
		Reason: fmt.Sprintf("no stored checkpoint of size %d has the trusted checkpoint's root", lc.Size)})
}

// addStored checks numbering, links and signatures, and queues the sound ones for their roots.
func (cc *checkpointCheck) addStored(stored []StoredCheckpoint, keys []ed25519.PublicKey) {
	prev, prevPos, want := events.ZeroHash, uint64(0), uint64(1)
	seenLog := false
	seen := map[string]bool{}
	keyName := func(k string) {
		if !seen[k] {
			seen[k] = true
			cc.rep.KeyIDs = append(cc.rep.KeyIDs, k)
		}
	}
	for _, s := range stored {
		cp := s.Checkpoint
		f := Finding{Kind: KindCheckpointChain, Position: s.Position(), Checkpoint: s.Seq}
		switch {
		case s.Err != nil:
			f.Kind, f.Position, f.Reason = KindCheckpointMalformed, prevPos, s.Err.Error()
		case s.Seq != want:
			f.Reason = fmt.Sprintf("checkpoints %d to %d are missing from the %s stream", want, s.Seq-1, CheckpointStream)
		case s.Log != nil:
		case seenLog:
			f.Reason = "a format-1 checkpoint after format-2 ones: the ledger no longer writes them"
		case cp.Seq != s.Seq:
			f.Reason = fmt.Sprintf("checkpoint stored as number %d says it is number %d", s.Seq, cp.Seq)
		case cp.Prev != prev:
			f.Reason = fmt.Sprintf("prev %s does not match the digest %s of checkpoint %d", cp.Prev, prev, s.Seq-1)
		case cp.Position < prevPos:
			f.Reason = fmt.Sprintf("position %d goes back from %d", cp.Position, prevPos)
		}
		want = s.Seq + 1
		if f.Reason != "" {
			cc.fs.add(f)
			if s.Log == nil {
				prev = cp.Digest()
			}
			prevPos = max(prevPos, s.Position())
			continue
		}
		if s.Log != nil {
			seenLog = true
			lc, err := ParseLogCheckpoint(s.Log.Note, keys)
			if err != nil {
				cc.fs.add(Finding{Kind: KindCheckpointSignature, Position: s.Log.Size, Checkpoint: s.Seq, Reason: err.Error()})
				continue
			}
			keyName(lc.Origin + "+" + KeyHashHex(lc.KeyHash))
			cc.pending = append(cc.pending, pendingCheckpoint{log: &lc, seq: s.Seq, since: prevPos})
			prevPos = max(prevPos, lc.Size)
			continue
		}
		prev = cp.Digest()
		if err := cp.VerifySignature(keys); err != nil {
			cc.fs.add(Finding{Kind: KindCheckpointSignature, Position: cp.Position, Checkpoint: s.Seq, Reason: err.Error()})
			continue
		}
		keyName(cp.KeyID)
		cc.pending = append(cc.pending, pendingCheckpoint{cp: cp, seq: s.Seq, since: prevPos})
		prevPos = cp.Position
	}
}

// before checks every queued checkpoint whose position lies before position p; the chain then
// holds exactly the history up to that checkpoint.
func (cc *checkpointCheck) before(p uint64, c *Chain) {
	for len(cc.pending) > 0 && cc.pending[0].position() < p {
		cc.check(cc.pending[0], c)
		cc.pending = cc.pending[1:]
	}
}

// finish checks the rest: those within the stream, and those beyond its end (truncation).
func (cc *checkpointCheck) finish(c *Chain) {
	for _, pc := range cc.pending {
		if pc.position() <= c.Position() {
			cc.check(pc, c)
			continue
		}
		cc.fs.add(Finding{Kind: KindTruncated, Position: c.Position() + 1, Checkpoint: pc.seq,
			Reason: fmt.Sprintf("checkpoint %d covers positions up to %d but the stream ends at %d: events were removed from the end",
				pc.seq, pc.position(), c.Position())})
	}
	cc.pending = nil
}

func (cc *checkpointCheck) check(pc pendingCheckpoint, c *Chain) {
	var diff []string
	if pc.log != nil {
		diff = cc.checkLog(pc, c)
	} else {
		cp := pc.cp
		if got := c.AccountsRoot(); got != cp.AccountsRoot {
			diff = append(diff, fmt.Sprintf("accounts root %s, signed %s", got, cp.AccountsRoot))
		}
		if got := c.LogDigest(); got != cp.LogDigest {
			diff = append(diff, fmt.Sprintf("log digest %s, signed %s", got, cp.LogDigest))
		}
		if c.Accounts() != cp.Accounts {
			diff = append(diff, fmt.Sprintf("%d accounts, signed %d", c.Accounts(), cp.Accounts))
		}
	}
	if len(diff) == 0 {
		cc.rep.Checkpoints++ // the trusted copy counts too
		return
	}
	what := fmt.Sprintf("checkpoint %d", pc.seq)
	if pc.trusted {
		what = "the trusted checkpoint"
	}
	cc.fs.add(Finding{Kind: KindCheckpointMismatch, Position: pc.position(), Checkpoint: pc.seq,
		Reason: fmt.Sprintf("the history up to position %d is not what %s signed (events after position %d were altered, removed, inserted or re-ordered, or the checkpoint was signed over another history): %v",
			pc.position(), what, pc.since, diff)})
}

// checkLog compares a format-2 checkpoint's root with the stream's tree and, for a stored one,
// proves it consistent with the format-2 checkpoint before it.
func (cc *checkpointCheck) checkLog(pc pendingCheckpoint, c *Chain) []string {
	cp, tree := pc.log, c.Tree()
	var diff []string
	if root := tree.Root(); tree.Size() != cp.Size || root != cp.Root {
		diff = append(diff, fmt.Sprintf("log tree of size %d has root %s, signed size %d root %s", tree.Size(), hexHash(root), cp.Size, hexHash(cp.Root)))
	}
	if pc.trusted {
		return diff
	}
	if prev := cc.lastLog; prev != nil {
		if err := cc.consistent(prev, cp, tree); err != nil {
			cc.fs.add(Finding{Kind: KindCheckpointInconsistent, Position: cp.Size, Checkpoint: pc.seq,
				Reason: fmt.Sprintf("checkpoint %d (size %d, root %s) does not extend checkpoint %d (size %d, root %s): %v",
					pc.seq, cp.Size, hexHash(cp.Root), cc.lastLogSeq, prev.Size, hexHash(prev.Root), err)})
		}
	}
	tree.Mark()
	cc.lastLog, cc.lastLogSeq = cp, pc.seq
	return diff
}

// consistent proves cp's signed root consistent with prev's from the stream's tree, marked at
// prev's size.
func (cc *checkpointCheck) consistent(prev, cp *LogCheckpoint, tree *LogTree) error {
	if cp.Size < prev.Size {
		return fmt.Errorf("the tree shrinks from %d to %d leaves", prev.Size, cp.Size)
	}
	if m, ok := tree.Marked(); !ok || m != prev.Size || tree.Size() != cp.Size {
		return fmt.Errorf("no proof: the stream does not hold positions 1 to %d (see the missing_messages finding)", cp.Size)
	}
	p, err := tree.ConsistencyProof(prev.Size)
	if err != nil {
		return err
	}
	return VerifyLogConsistency(prev.Size, cp.Size, p, prev.Root, cp.Root)
}
