// Package api holds what the command and query edges share on the wire: the rejection body and
// the one mapping from error codes to HTTP statuses.
package api
