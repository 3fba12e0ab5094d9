package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/creditledger/creditledger/audit"
)

// auditFailure reports whether err is a finding (exit 1) rather than a usage or connection error.
func auditFailure(err error) bool {
	for _, e := range []error{audit.ErrRootMismatch, audit.ErrBadSignature, audit.ErrUntrustedKey, audit.ErrProofInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func findingOr(err error) error {
	if auditFailure(err) {
		return &exitCodeError{exitAuditFailed, err}
	}
	return err
}

// pinnedOrStored is the pinned keys, or else the key the first stored checkpoint names, with a
// warning on w (trust on first use).
func pinnedOrStored(ctx context.Context, w io.Writer, src *audit.Source, pinned []ed25519.PublicKey) []ed25519.PublicKey {
	if len(pinned) > 0 {
		return pinned
	}
	stored, err := src.Checkpoints(ctx)
	if err != nil {
		return nil
	}
	keys, warning := audit.FirstUseKeys(stored)
	if warning != "" {
		fmt.Fprintln(w, "warning: "+warning)
	}
	return keys
}

func auditProofCmd() *cobra.Command {
	var c auditConn
	var kf keyFlags
	var account, verify string
	var seq, position uint64
	cmd := &cobra.Command{
		Use:   "proof (--position P | --account ID) [--checkpoint N] | --verify FILE",
		Short: "Print the inclusion proof of an event in a signed checkpoint (or check one offline)",
		Long: "With --position P, the proof that the event stored at P is in the log tree of checkpoint N (default:\n" +
			"the latest); with --account ID, of the account's last event at that checkpoint. Under a format-1\n" +
			"checkpoint, --account proves the account's chain head in its accounts tree instead. The format is in\n" +
			"docs/FORMAT.md; GET /v1/audit/proof?position=P answers the same.",
		Example: "creditledger audit proof --position 1234 --public-key checkpoint-ed25519.vkey > proof.json\n" +
			"  creditledger audit proof --account acme --checkpoint 41 > proof.json\n" +
			"  creditledger audit proof --verify proof.json --public-key checkpoint-ed25519.vkey",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := kf.keys()
			if err != nil {
				return err
			}
			if verify != "" {
				return verifyProofFile(cmd.OutOrStdout(), verify, keys)
			}
			if (account == "") == (position == 0) {
				return &exitCodeError{exitError, errors.New("give exactly one of --position and --account (or --verify FILE)")}
			}
			ctx, _, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			keys = pinnedOrStored(ctx, cmd.ErrOrStderr(), src, keys)
			sc, err := src.StoredCheckpoint(ctx, seq)
			if err != nil {
				return err
			}
			if sc.Log == nil && account != "" {
				p, err := audit.BuildProof(ctx, src, account, sc.Seq, keys)
				if err != nil {
					return findingOr(err)
				}
				printJSON(cmd.OutOrStdout(), p)
				return nil
			}
			if sc.Log == nil {
				return fmt.Errorf("%w: checkpoint %d", audit.ErrNoLogCheckpoint, sc.Seq)
			}
			if account != "" {
				if position, err = audit.LastPositionOf(ctx, src, account, sc.Log.Size); err != nil {
					return err
				}
			}
			p, err := audit.BuildEventProof(ctx, src, position, sc.Seq, keys)
			if err != nil {
				return findingOr(err)
			}
			printJSON(cmd.OutOrStdout(), p)
			return nil
		},
	}
	c.add(cmd.Flags())
	kf.add(cmd.Flags())
	cmd.Flags().StringVar(&account, "account", "", "prove the account's last event at the checkpoint")
	cmd.Flags().Uint64Var(&position, "position", 0, "prove the event at this stream position")
	cmd.Flags().Uint64Var(&seq, "checkpoint", 0, "checkpoint number (default: the latest)")
	cmd.Flags().StringVar(&verify, "verify", "", "check a saved proof offline instead (with --public-key to pin the key)")
	return cmd
}

// verifyProofFile checks a saved proof of either kind: an event's inclusion in a log tree
// checkpoint, or (format 1) an account's chain head in an accounts tree.
func verifyProofFile(w io.Writer, path string, keys []ed25519.PublicKey) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &exitCodeError{exitError, err}
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return &exitCodeError{exitError, fmt.Errorf("proof %s: %w", path, err)}
	}
	if _, ok := probe["event_base64"]; ok {
		var p audit.EventProof
		if err := json.Unmarshal(data, &p); err != nil {
			return &exitCodeError{exitError, fmt.Errorf("proof %s: %w", path, err)}
		}
		cp, err := p.Verify(keys)
		if err != nil {
			return &exitCodeError{exitAuditFailed, err}
		}
		fmt.Fprintf(w, "OK: the event at position %d is in checkpoint %d (%s, size %d, key %s+%s)\n",
			p.Position, p.CheckpointSeq, cp.Origin, cp.Size, cp.Origin, audit.KeyHashHex(cp.KeyHash))
	} else {
		var p audit.Proof
		if err := json.Unmarshal(data, &p); err != nil {
			return &exitCodeError{exitError, fmt.Errorf("proof %s: %w", path, err)}
		}
		if err := p.Verify(keys); err != nil {
			return &exitCodeError{exitAuditFailed, err}
		}
		fmt.Fprintf(w, "OK: account %s at version %d (hash %s) is in checkpoint %d (position %d, key %s)\n",
			p.Leaf.AccountID, p.Leaf.Version, p.Leaf.Hash, p.Checkpoint.Seq, p.Checkpoint.Position, p.Checkpoint.KeyID)
	}
	if len(keys) == 0 {
		fmt.Fprintln(w, "warning: the key was not pinned; pass --public-key to check who signed it")
	}
	return nil
}

func auditCheckpointCmd() *cobra.Command {
	var c auditConn
	var kf keyFlags
	var request, list bool
	var seq uint64
	var out string
	cmd := &cobra.Command{
		Use:   "checkpoint [--request] [--checkpoint N] [--list] [--out FILE]",
		Short: "Print (or save) a signed checkpoint: the latest stored, number N, all, or a new one on request",
		Example: "creditledger audit checkpoint --request --out cp.txt --public-key checkpoint-ed25519.vkey\n" +
			"  creditledger audit checkpoint --list",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := kf.keys()
			if err != nil {
				return err
			}
			ctx, nc, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			if list {
				return listCheckpoints(ctx, cmd.OutOrStdout(), src)
			}
			var sc audit.StoredCheckpoint
			if request {
				sc, err = requestCheckpoint(ctx, nc)
			} else {
				sc, err = src.StoredCheckpoint(ctx, seq)
			}
			if err != nil {
				return err
			}
			stored := sc.Log != nil
			verifyKeys := keys
			if len(verifyKeys) == 0 {
				verifyKeys = pinnedOrStored(ctx, io.Discard, src, nil)
			}
			var text []byte
			if stored {
				if _, err := audit.ParseLogCheckpoint(sc.Log.Note, verifyKeys); err != nil {
					return &exitCodeError{exitAuditFailed, err}
				}
				text = sc.Log.Note
			} else {
				if err := sc.Checkpoint.VerifySignature(keys); err != nil {
					return &exitCodeError{exitAuditFailed, err}
				}
				var buf bytes.Buffer
				printJSON(&buf, sc.Checkpoint)
				text = buf.Bytes()
			}
			if out != "" {
				if _, err := writeAtomically(out, func(w io.Writer) (int, error) { return w.Write(text) }); err != nil {
					return err
				}
			}
			_, _ = cmd.OutOrStdout().Write(text)
			if len(keys) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: key not pinned; pass --public-key to check who signed it")
			}
			return nil
		},
	}
	c.add(cmd.Flags())
	kf.add(cmd.Flags())
	cmd.Flags().BoolVar(&request, "request", false, "ask the service to sign a checkpoint now (on "+audit.CheckpointRequestSubject+")")
	cmd.Flags().BoolVar(&list, "list", false, "print every stored checkpoint as JSON lines")
	cmd.Flags().Uint64Var(&seq, "checkpoint", 0, "checkpoint number (default: the latest)")
	cmd.Flags().StringVar(&out, "out", "", "also save the checkpoint to this file, for verify --trusted-checkpoint and audit consistency")
	return cmd
}

// requestCheckpoint asks the service for a checkpoint of the stream's current head.
func requestCheckpoint(ctx context.Context, nc *nats.Conn) (audit.StoredCheckpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, audit.CheckpointRequestSubject, nil)
	if err != nil {
		return audit.StoredCheckpoint{}, fmt.Errorf("request %s: %w", audit.CheckpointRequestSubject, err)
	}
	var rej struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(msg.Data, &rej) == nil && rej.Error != nil {
		return audit.StoredCheckpoint{}, &exitCodeError{exitRejected, fmt.Errorf("checkpoint refused: %s: %s", rej.Error.Code, rej.Error.Message)}
	}
	sc := audit.ParseStoredCheckpoint(0, msg.Data)
	return sc, sc.Err
}

// listedCheckpoint is one line of audit checkpoint --list for a format-2 checkpoint.
type listedCheckpoint struct {
	Seq        uint64 `json:"seq"`
	Format     int    `json:"format"`
	Origin     string `json:"origin"`
	Size       uint64 `json:"size"`
	Root       string `json:"root"`
	Checkpoint string `json:"checkpoint"`
}

func listCheckpoints(ctx context.Context, w io.Writer, src *audit.Source) error {
	all, err := src.Checkpoints(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	for _, s := range all {
		var v any = s.Checkpoint
		switch {
		case s.Err != nil:
			fmt.Fprintf(w, "{\"seq\":%d,\"error\":%q}\n", s.Seq, s.Err.Error())
			continue
		case s.Log != nil:
			v = listedCheckpoint{Seq: s.Seq, Format: 2, Origin: s.Log.Origin, Size: s.Log.Size,
				Root: fmt.Sprintf("%x", s.Log.Root), Checkpoint: string(s.Log.Note)}
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// consistencyReport is what audit consistency prints.
type consistencyReport struct {
	OK bool `json:"ok"`
	audit.ConsistencyProof
	// Findings name what does not hold: a checkpoint the stream does not reproduce (rewritten),
	// or a later checkpoint that does not extend the earlier. Empty ([]), never absent, when OK:
	// docs/FORMAT.md shows the member.
	Findings []string `json:"findings"`
}

// consistencyArg is OLD or NEW: a checkpoint file (its signed size and root) or a size.
type consistencyArg struct {
	size uint64
	cp   *audit.LogCheckpoint
	name string
}

func readConsistencyArg(s string, keys []ed25519.PublicKey) (consistencyArg, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if _, statErr := os.Stat(s); statErr != nil {
			return consistencyArg{size: n, name: "size " + s}, nil
		}
	}
	sc, err := audit.ReadCheckpointFile(s)
	if err != nil {
		return consistencyArg{}, &exitCodeError{exitError, err}
	}
	if sc.Log == nil {
		return consistencyArg{}, &exitCodeError{exitError, fmt.Errorf("%s: %w: a format-1 checkpoint signs no log tree; check it with audit verify --trusted-checkpoint", s, audit.ErrNoLogCheckpoint)}
	}
	cp, err := audit.ParseLogCheckpoint(sc.Log.Note, keys)
	if err != nil {
		return consistencyArg{}, &exitCodeError{exitAuditFailed, fmt.Errorf("%s: %w", s, err)}
	}
	return consistencyArg{size: cp.Size, cp: &cp, name: s}, nil
}

func auditConsistencyCmd() *cobra.Command {
	var c auditConn
	var kf keyFlags
	cmd := &cobra.Command{
		Use:   "consistency OLD NEW",
		Short: "Prove and check that NEW extends OLD (checkpoint files or tree sizes): nothing signed before was rewritten",
		Long: "OLD and NEW are checkpoint files (saved with audit checkpoint --out) or tree sizes. The log tree is\n" +
			"rebuilt from the stream up to NEW; each checkpoint's signed root must be the stream's root at its size,\n" +
			"and the RFC 6962 consistency proof must lead from OLD's root to NEW's. Prints the proof (docs/FORMAT.md);\n" +
			"exit 1 naming what does not hold.",
		Example: "creditledger audit consistency cp-2026-01.txt cp-2026-02.txt --public-key checkpoint-ed25519.vkey\n" +
			"  creditledger audit consistency 1000 cp-2026-02.txt",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pinned, err := kf.keys()
			if err != nil {
				return err
			}
			ctx, _, src, done, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer done()
			keys := pinnedOrStored(ctx, cmd.ErrOrStderr(), src, pinned)
			oldArg, err := readConsistencyArg(args[0], keys)
			if err != nil {
				return err
			}
			newArg, err := readConsistencyArg(args[1], keys)
			if err != nil {
				return err
			}
			if oldArg.size > newArg.size {
				return &exitCodeError{exitAuditFailed, fmt.Errorf("NEW (%s, size %d) is smaller than OLD (%s, size %d): it cannot extend it",
					newArg.name, newArg.size, oldArg.name, oldArg.size)}
			}
			stop := progress(cmd, src, "consistency")
			p, err := audit.BuildConsistencyProof(ctx, src, oldArg.size, newArg.size)
			stop()
			if err != nil {
				return findingOr(err)
			}
			rep := checkConsistency(p, oldArg, newArg)
			printJSON(cmd.OutOrStdout(), rep)
			if !rep.OK {
				return &exitCodeError{exitAuditFailed, fmt.Errorf("consistency failed: %s", rep.Findings[0])}
			}
			return nil
		},
	}
	c.add(cmd.Flags())
	kf.add(cmd.Flags())
	return cmd
}

// checkConsistency compares the signed roots with the stream's and checks the proof between
// the signed roots (the stream's where a size was given).
func checkConsistency(p audit.ConsistencyProof, oldArg, newArg consistencyArg) consistencyReport {
	rep := consistencyReport{ConsistencyProof: p, Findings: []string{}}
	roots := [2]string{p.Root1, p.Root2}
	for i, a := range []consistencyArg{oldArg, newArg} {
		if a.cp == nil {
			continue
		}
		signed := fmt.Sprintf("%x", a.cp.Root)
		if signed != roots[i] {
			rep.Findings = append(rep.Findings, fmt.Sprintf("%s signs root %s for size %d, but the stream's root there is %s: that checkpoint was signed over another history (rewritten)",
				a.name, signed, a.size, roots[i]))
		}
		roots[i] = signed
	}
	var r [2][32]byte
	for i, s := range roots {
		b, _ := hex.DecodeString(s)
		copy(r[i][:], b)
	}
	if err := p.Verify(r[0], r[1]); err != nil {
		rep.Findings = append(rep.Findings, fmt.Sprintf("%s (size %d) does not extend %s (size %d): %v", newArg.name, newArg.size, oldArg.name, oldArg.size, err))
	}
	rep.OK = len(rep.Findings) == 0
	return rep
}
