// Package natsconn turns the connection settings every NATS client of the ledger shares (URL,
// credentials, TLS) into nats.go options, so the CLI, the load tool and Go callers of
// commands.NewClient connect the same way. It knows nothing about the ledger's subjects.
package natsconn
