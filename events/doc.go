// Package events holds the ledger's immutable facts: the payload types, the hash-chained
// envelope they travel in, and the codec that turns stored bytes back into events.
//
// Events are never edited after release. A changed payload gets a new schema version and an
// upcaster in the registry table; old messages in the stream stay exactly as they were written.
//
// Every envelope names the rule that made its hash (hash_rule): RFC 8785 canonical bytes for every
// new event, the legacy rule for events stored before it; StoredHash checks either from the stored
// bytes. docs/FORMAT.md specifies both.
package events
