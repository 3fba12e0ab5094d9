// Package web serves the Credits & Billing dashboard: one page (overview, account list, account),
// embedded in the binary, over the ledger's read models.
//
// The page itself only reads. It fetches the read models from the JSON API the projections
// package serves (/v1/accounts/{id}/balance, /licenses, /switches, with ?min_position= and
// ?as_of=), and this package adds the two routes the page needs beyond them:
//
//   - GET /v1/accounts/{id}/events: a Server-Sent Events stream fed by projections.Projector.Watch.
//     Each event carries the stream position the projector has just applied for the account; the
//     page then refetches the read models with ?min_position= set to it (read-your-writes), so
//     it updates within a moment of a new event without polling.
//   - GET /v1/accounts/{id}/history: credits over time, folded from the account's stored events
//     (read from the event store with the account's subject filter) with the same ledger.Evolve
//     the writer and the projector use.
//   - GET /v1/accounts/{id}/log: the account's stored events with each one's hash-chain status.
//
// The page also has an overview and an account list, drawn from the fleet read models
// (/v1/totals, /v1/accounts, /v1/payg/charges).
//
// Handler composes these with the JSON API in one http.ServeMux.
package web
