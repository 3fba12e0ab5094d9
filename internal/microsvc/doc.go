// Package microsvc serves a NATS micro service (ADR-32: endpoints plus $SRV.PING, $SRV.INFO and
// $SRV.STATS) whose requests may be answered after their handler has returned, from any
// goroutine, and are still counted as micro counts them.
//
// nats.go's micro package records a request's outcome (num_errors, last_error) when the
// handler returns, so an answer sent later from another goroutine (the group-commit writer, a
// query waiting for min_position) is invisible to $SRV.STATS, and calling Request.Error there
// races with micro's read. Blocking the handler instead would serialise each endpoint, since a
// subscription delivers one message at a time. Here the outcome is recorded when the answer is
// actually sent. The wire format is micro's own: the answers are nats.go's micro.Ping,
// micro.Info and micro.Stats values, handlers are micro.Handler and requests micro.Request, so
// micro's tools and clients see no difference.
package microsvc
