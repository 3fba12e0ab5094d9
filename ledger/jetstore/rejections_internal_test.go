package jetstore

import (
	"testing"
)

// FuzzDecodeRejections: a message of the rejection log is untrusted input (only the ledger may
// publish there, but a decoder must fail closed): any bytes decode without a panic, and what
// ReadRejectionAt would index is what the decoder returned.
func FuzzDecodeRejections(f *testing.F) {
	f.Add([]byte(`[{"command_id":"c","account_id":"a","body_hash":"h","code":"insufficient_credits","message":"m","data":{"k":"v"}}]`))
	f.Add([]byte(`{"command_id":"c-old","account_id":"old","body_hash":"h","code":"insufficient_credits","message":"m"}`))
	f.Add([]byte(` [{"command_id":""},{"command_id":"x"}]`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`[`))
	f.Add([]byte(`[{"revokes":{"position":7,"index":2},"revoked_command_id":"c"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range decodeRejections(data) {
			r := d.rejection()
			if r.Err == nil || r.CommandID != d.CommandID {
				t.Fatalf("decoded %+v as %+v", d, r)
			}
		}
		if len(decodeEntries(data)) != len(decodeRejections(data)) {
			t.Fatalf("the two readers of %q see different messages", data)
		}
	})
}
