package events_test

import (
	"testing"

	"github.com/creditledger/creditledger/events"
)

// BenchmarkEncodeSeal is the write path of one event: payload, hash, stored bytes.
func BenchmarkEncodeSeal(b *testing.B) {
	p := samplePayloads()[events.TypeLicensePurchased]
	tmpl := sealedEnvelope(b, p)
	b.ReportAllocs()
	for b.Loop() {
		e := tmpl
		raw, err := events.EncodePayload(p)
		if err != nil {
			b.Fatal(err)
		}
		e.Payload = raw
		if err := e.Seal(); err != nil {
			b.Fatal(err)
		}
		if _, err := events.Encode(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealEncode is the writer's one-pass form of the same work.
func BenchmarkSealEncode(b *testing.B) {
	p := samplePayloads()[events.TypeLicensePurchased]
	tmpl := sealedEnvelope(b, p)
	b.ReportAllocs()
	for b.Loop() {
		e := tmpl
		raw, err := events.EncodePayload(p)
		if err != nil {
			b.Fatal(err)
		}
		e.Payload = raw
		if _, err := e.SealEncode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is the read path of one stored event, as a projector or a replay runs it.
func BenchmarkDecode(b *testing.B) {
	data := encoded(b, samplePayloads()[events.TypeLicensePurchased])
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkComputeHash is what an auditor pays per event to verify the chain.
func BenchmarkComputeHash(b *testing.B) {
	e := sealedEnvelope(b, samplePayloads()[events.TypeLicensePurchased])
	b.ReportAllocs()
	for b.Loop() {
		if h, err := e.ComputeHash(); err != nil || len(h) != 64 {
			b.Fatalf("hash %q: %v", h, err)
		}
	}
}
