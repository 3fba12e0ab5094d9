// Package auditread serves the auditors' direct gets and stream infos with bounds. NATS
// permissions cannot see a request's body. nats-server queues the whole range a direct get asks
// for at once, however large its batch and max_bytes: with raw access to $JS.API.DIRECT.GET an
// auditor's credentials were enough to run a node out of memory. A stream info with a
// subjects_filter makes the server walk every matching subject of the stream (one per account on
// LEDGER) in the queue of info requests the ledger's own head reads wait in, and the server
// drops that whole queue once 10,000 requests wait: with raw access to $JS.API.STREAM.INFO an
// auditor's loop kept the ledger's head reads from being answered.
//
// The auditors' account maps its direct gets onto the ledger's subject (authz.SubjectAuditRead)
// and its stream infos onto another (authz.SubjectAuditInfo); a Relay takes each kind there
// (Start, StartStreamInfo), refuses a malformed direct get and a stream info asking for
// subjects_filter, caps a direct get's batch and max_bytes (Limits), runs at most Config.Slots
// at once, passes each on to the JetStream API and copies the answers, header block and status
// line intact (Wire), to the reply subject the server gave the auditor's request. The auditor
// sends and receives what it did before; the node holds at most Slots capped answers for them,
// and JetStream's queue of info requests holds at most a few of theirs.
package auditread
