// Package projections builds the read models (balance, license list, billing-switch history)
// from the LEDGER stream and serves them to dashboards over NATS and HTTP.
//
// The read models fold events with the same ledger.Evolve the writer uses, so a balance read here
// can never disagree with the balance a command was decided against. They live in memory and
// are fed by an ordered consumer from the position they last applied; each event is applied at
// most once (positions at or below the applied one are skipped), so redelivery and replay are safe.
package projections
