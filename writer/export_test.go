package writer

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
