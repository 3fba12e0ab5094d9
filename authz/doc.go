// Package authz is the ledger's access policy: the access config file (NATS users per role,
// HTTP bearer tokens per role), the NATS permissions each role gets on the embedded server, and
// the lookup of an HTTP token's role. Every role gets exactly its job and no more; the tables
// here are the single place that says what that job is.
package authz
