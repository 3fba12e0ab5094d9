package events

import (
	"testing"
	"time"
)

// BenchmarkSealEncodeRule compares the append path's sealing under the previous rule (Go's
// encoding of the struct, one pass, as SealEncode did before HashRuleJCS) with the current one
// (payload canonicalized, envelope written in RFC 8785 order).
func BenchmarkSealEncodeRule(b *testing.B) {
	at := time.Date(2025, time.March, 10, 9, 30, 15, 123456789, time.UTC)
	p := LicensePurchased{LicenseID: "lic-1", Source: "azure_marketplace", TermMonths: 12, AutoRenew: true,
		ContractStart: at, PurchasedAt: at, ExpiresAt: at.AddDate(1, 0, 0)}
	tmpl := Envelope{EventID: "01950e7c-8a3b-7cde-9f01-23456789abcd", Type: p.EventType(), SchemaVersion: 1,
		AccountID: "acc-1", Version: 7, OccurredAt: at, CommandID: "cmd-42",
		CommandHash: "abababababababababababababababababababababababababababababababab", CorrelationID: "corr-9",
		PrevHash: ZeroHash}
	b.Run("legacy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := tmpl
			raw, err := EncodePayload(p)
			if err != nil {
				b.Fatal(err)
			}
			e.Payload = raw
			c, err := e.legacyBytes()
			if err != nil {
				b.Fatal(err)
			}
			e.Hash = hexSum(c)
			_ = appendHash(c, e.Hash)
		}
	})
	b.Run("rfc8785", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := tmpl
			raw, err := EncodePayload(p)
			if err != nil {
				b.Fatal(err)
			}
			e.Payload = raw
			if _, err := e.SealEncode(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyStoredRule is an auditor's cost per event: the previous build's check
// (re-encode the decoded struct, hash) against StoredHash under each rule.
func BenchmarkVerifyStoredRule(b *testing.B) {
	at := time.Date(2025, time.March, 10, 9, 30, 15, 123456789, time.UTC)
	p := LicensePurchased{LicenseID: "lic-1", Source: "azure_marketplace", TermMonths: 12, AutoRenew: true,
		ContractStart: at, PurchasedAt: at, ExpiresAt: at.AddDate(1, 0, 0)}
	raw, err := EncodePayload(p)
	if err != nil {
		b.Fatal(err)
	}
	e := Envelope{EventID: "01950e7c-8a3b-7cde-9f01-23456789abcd", Type: p.EventType(), SchemaVersion: 1,
		AccountID: "acc-1", Version: 7, OccurredAt: at, CommandID: "cmd-42", CorrelationID: "corr-9",
		Payload: raw, PrevHash: ZeroHash}
	legacy := e
	if err := legacy.SealLegacy(); err != nil {
		b.Fatal(err)
	}
	legacyData, _ := Encode(&legacy)
	jcsData, err := e.SealEncode()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("previous-build", func(b *testing.B) {
		for b.Loop() {
			if h, err := legacy.ComputeHash(); err != nil || h != legacy.Hash {
				b.Fatal(err)
			}
		}
	})
	for name, data := range map[string][]byte{"legacy": legacyData, "rfc8785": jcsData} {
		ev, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if h, err := StoredHash(data, &ev.Envelope); err != nil || h != ev.Hash {
					b.Fatal(h, err)
				}
			}
		})
	}
}
