package projections

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"time"

	"github.com/creditledger/creditledger/ledger"
)

// SnapshotStore keeps the projector's checkpoints (a JetStream object store in production).
type SnapshotStore interface {
	Save(ctx context.Context, name string, data []byte) error
	Load(ctx context.Context, name string) ([]byte, error)
}

const (
	// SnapshotName is the object the projector checkpoints to; the read models and the position
	// they reflect are saved together, so a restart resumes exactly after that position.
	SnapshotName  = "projections-v1"
	snapshotMagic = "creditledger-projections-v1\n"
	// DefaultSnapshotEvery is how many applied events trigger a checkpoint.
	DefaultSnapshotEvery = 100_000
)

// snapshotDoc is the checkpoint's content.
type snapshotDoc struct {
	Position uint64
	Accounts map[string]ledger.Account
	// The messages parked before Position: an account whose read models stopped behind one
	// stays reported after a restart (added after v1; absent in older checkpoints, which gob
	// reads as none).
	Parked  []Parked
	ParkedN int
}

// encodeSnapshot serialises the read models and their position under the read lock.
func (p *Projector) encodeSnapshot() ([]byte, uint64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	if err := gob.NewEncoder(&buf).Encode(snapshotDoc{Position: p.position, Accounts: p.accounts,
		Parked: p.parked, ParkedN: p.parkedN}); err != nil {
		return nil, 0, fmt.Errorf("encode projections checkpoint: %w", err)
	}
	return buf.Bytes(), p.position, nil
}

// Restore loads the newest checkpoint, if any; it returns the position it restored (0: none,
// the projector starts from the beginning of the stream).
func (p *Projector) Restore(ctx context.Context, store SnapshotStore) (uint64, error) {
	data, err := store.Load(ctx, SnapshotName)
	if err != nil || data == nil {
		return 0, err
	}
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return 0, errors.New("projections checkpoint: unknown format")
	}
	var doc snapshotDoc
	if err := gob.NewDecoder(bytes.NewReader(data[len(snapshotMagic):])).Decode(&doc); err != nil {
		return 0, fmt.Errorf("decode projections checkpoint: %w", err)
	}
	if doc.Accounts == nil {
		doc.Accounts = map[string]ledger.Account{}
	}
	for id, a := range doc.Accounts {
		doc.Accounts[id] = a.WithMaps() // gob leaves empty maps nil
	}
	p.mu.Lock()
	p.accounts, p.position = doc.Accounts, doc.Position
	p.ids = sortedIDs(doc.Accounts)
	p.dirty, p.fleet.ready = nil, false // the fleet rows are rendered again from the restored state
	p.parked, p.parkedN = doc.Parked, doc.ParkedN
	p.notify()
	p.mu.Unlock()
	return doc.Position, nil
}

// UseSnapshots makes Run checkpoint the read models every `every` applied events and when it
// stops. Call it before Run.
func (p *Projector) UseSnapshots(store SnapshotStore, every uint64) {
	if every == 0 {
		every = DefaultSnapshotEvery
	}
	p.snaps, p.snapEvery = store, every
}

// SaveCheckpoint saves a checkpoint now (it waits for a save in progress).
func (p *Projector) SaveCheckpoint(ctx context.Context) { p.maybeCheckpoint(ctx, true) }

// maybeCheckpoint saves a checkpoint in the background when enough events were applied since
// the last one and no save is running; with final it saves synchronously.
func (p *Projector) maybeCheckpoint(ctx context.Context, final bool) {
	if p.snaps == nil {
		return
	}
	pos := p.Position()
	if pos <= p.snapAt || (!final && pos-p.snapAt < p.snapEvery) {
		return
	}
	if p.saving != nil {
		select {
		case <-p.saving:
		default:
			if !final {
				return
			}
			<-p.saving
		}
	}
	data, at, err := p.encodeSnapshot()
	if err != nil {
		p.log.Error().Err(err).Msg("projections checkpoint")
		return
	}
	p.snapAt = at
	done := make(chan struct{})
	p.saving = done
	save := func() {
		defer close(done)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := p.snaps.Save(sctx, SnapshotName, data); err != nil {
			p.log.Error().Err(err).Uint64("position", at).Msg("projections checkpoint save failed")
			return
		}
		p.log.Debug().Uint64("position", at).Int("bytes", len(data)).Msg("projections checkpoint saved")
	}
	if final {
		save()
		return
	}
	go save()
}
