// Package server assembles one ledger process: an embedded NATS server with JetStream (or a
// connection to an existing deployment), the event store, the single writer, the projector, the
// NATS command and query services and the HTTP API, with an orderly start and shutdown.
package server
