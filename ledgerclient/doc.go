// Package ledgerclient is the Go client of a creditledger: it sends commands and queries over
// NATS request-reply and returns typed results. It links no server code and no logger (a test
// checks this), so other services can import it.
//
// A command whose CommandID is empty gets a generated one (a UUID), returned on the Result; a
// rejection comes back as a *Error whose Code is the stable wire code, so
// errors.Is(err, ledgerclient.ErrInsufficientCredits) works; WithRetry retries `unavailable`
// answers and timeouts with the same command_id, which the ledger answers at most once.
package ledgerclient
