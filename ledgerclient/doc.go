// Package ledgerclient is the Go client of a creditledger: it sends commands and queries over
// NATS request-reply and returns typed results. It links no server code and no logger (a test
// checks this), so other services can import it.
//
// A command whose CommandID is empty gets a generated one (a UUID), returned on the Result; a
// rejection comes back as a *Error whose Code is the stable wire code, so
// errors.Is(err, ledgerclient.ErrInsufficientCredits) works; WithRetry retries `unavailable`
// answers and timeouts with the same command_id, which the ledger answers at most once.
//
// Against a ledger run with an access config, connect with your user's inbox prefix: each user
// may subscribe only to its own ("_INBOX_<user>" or "_INBOX_<public nkey>", docs/SECURITY.md),
// so pass nats.CustomInboxPrefix("_INBOX_<user>") to nats.Connect (natsconn.Options does it),
// or the replies never arrive.
package ledgerclient
