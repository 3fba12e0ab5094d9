package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// fileSnapshots keeps snapshots as files beside the embedded JetStream store. A single embedded
// node reads them straight from its own disk: measured on a 76 MB snapshot (1M events), the
// object store took 2-4 s to hand it back and the file 0.05 s, and the read is on the restart
// path. Deployments that share or do not own the disk (--nats-url, a cluster) use the JetStream
// object store instead.
type fileSnapshots struct {
	dir string
}

// Save writes the snapshot to a temporary file, fsyncs it and renames it into place, so a crash
// leaves either the old snapshot or the new one, never half of one.
func (f fileSnapshots) Save(_ context.Context, name string, data []byte) error {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("snapshot dir: %w", err)
	}
	tmp, err := os.CreateTemp(f.dir, name+".*.tmp")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write snapshot %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync snapshot %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close snapshot %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(f.dir, name)); err != nil {
		return fmt.Errorf("install snapshot %s: %w", name, err)
	}
	d, err := os.Open(f.dir)
	if err != nil {
		return fmt.Errorf("snapshot dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync snapshot dir: %w", err)
	}
	return nil
}

// Load returns the named snapshot, or nil when there is none.
func (f fileSnapshots) Load(_ context.Context, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", name, err)
	}
	return b, nil
}
