// Package auditread serves the auditors' direct gets with bounds. NATS permissions cannot see a
// request's body, and nats-server queues the whole range a direct get asks for at once, however
// large its batch and max_bytes: with raw access to $JS.API.DIRECT.GET an auditor's credentials
// were enough to run a node out of memory. The auditors' account maps its direct gets onto the
// ledger's subject (authz.SubjectAuditRead); a Relay takes them there, refuses a malformed one,
// caps its batch and max_bytes (Limits), runs at most Config.Slots at once, passes each on to the
// JetStream API and copies the answers, header block and status line intact (Wire), to the reply
// subject the server gave the auditor's request. The auditor sends and receives what it did
// before; the node holds at most Slots capped answers for them.
package auditread
