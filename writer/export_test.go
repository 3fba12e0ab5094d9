package writer

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
)

// HoldEncode makes f run before each snapshot is encoded, on the goroutine that encodes it (set
// it before Run): a test holds a snapshot's encoding there.
func (w *Writer) HoldEncode(f func()) { w.snap.encodeHook = f }

// SnapshotHead is the head of an encoded snapshot.
func SnapshotHead(data []byte) (uint64, error) {
	st, err := decodeSnapshot(data)
	if err != nil {
		return 0, err
	}
	return st.head, nil
}

// SnapshotFingerprint is the fingerprint an encoded snapshot records of the message at its head
// (nil: none, as an older build wrote it).
func SnapshotFingerprint(data []byte) ([]byte, error) {
	st, err := decodeSnapshot(data)
	if err != nil {
		return nil, err
	}
	return st.fingerprint, nil
}

// AsOlderBuild returns a whole v5 snapshot as the build before fingerprints wrote it: its gob
// section re-encoded without the stamp that now ends it (snapident.go).
func AsOlderBuild(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return nil, errors.New("not a whole v5 snapshot")
	}
	r := &snapReader{b: data[len(snapshotMagic):]}
	count := r.uvarint()
	secLen := r.uvarint()
	if r.err != nil || secLen > uint64(len(r.b)) {
		return nil, errors.New("snapshot truncated")
	}
	sec, rest := r.b[:secLen], r.b[secLen:]
	dec := gob.NewDecoder(bytes.NewReader(sec))
	var head uint64
	var types []string
	accts := map[string]accountSnap{}
	for _, v := range []any{&head, &types, &accts} {
		if err := dec.Decode(v); err != nil {
			return nil, err
		}
	}
	var older bytes.Buffer
	enc := gob.NewEncoder(&older)
	for _, v := range []any{head, types, accts} {
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
	}
	out := binary.AppendUvarint([]byte(snapshotMagic), count)
	out = binary.AppendUvarint(out, uint64(older.Len()))
	out = append(out, older.Bytes()...)
	return append(out, rest...), nil
}
