package jetstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotBucket is the object store that holds state snapshots; losing it costs only restart
// time (the state is rebuilt from the LEDGER stream), never data.
const SnapshotBucket = "LEDGER_SNAPSHOTS"

// Snapshots keeps named snapshot blobs in a JetStream object store.
type Snapshots struct {
	obs jetstream.ObjectStore
}

// OpenSnapshots creates or binds the snapshot bucket.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, replicas int) (*Snapshots, error) {
	if replicas < 1 {
		replicas = 1
	}
	obs, err := js.ObjectStore(ctx, SnapshotBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      SnapshotBucket,
			Description: "creditledger state snapshots (a cache of the LEDGER stream)",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Compression: true,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot bucket: %w", err)
	}
	return &Snapshots{obs: obs}, nil
}

// Save replaces the named snapshot.
func (s *Snapshots) Save(ctx context.Context, name string, data []byte) error {
	if _, err := s.obs.PutBytes(ctx, name, data); err != nil {
		return fmt.Errorf("save snapshot %s: %w", name, err)
	}
	return nil
}

// Load returns the named snapshot, or nil when there is none.
func (s *Snapshots) Load(ctx context.Context, name string) ([]byte, error) {
	b, err := s.obs.GetBytes(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot %s: %w", name, err)
	}
	return b, nil
}
