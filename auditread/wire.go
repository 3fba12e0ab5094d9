package auditread

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Wire publishes messages with a header block given byte for byte, on a NATS connection of its
// own. nats.go cannot: it writes every header block as "NATS/1.0" and the fields, so a status
// (JetStream's "NATS/1.0 204 EOB", "404 Message Not Found") would reach the auditor as a field
// named Status, which clients other than Go's do not read as a status. Wire speaks just enough
// of the client protocol to connect, answer the server's pings and publish (PUB, HPUB).
type Wire struct {
	dial func() (net.Conn, error)
	tls  *tls.Config // nil: plain
	// connect is the CONNECT document: the identity, headers on, echo off.
	connect []byte

	mu   sync.Mutex
	conn net.Conn
	w    *bufio.Writer
	err  error // the connection's last -ERR or read error (then conn is nil)
	// closed: Close was called; nothing connects again (a request the relay was still taking
	// when it stopped would otherwise dial a connection no one closes).
	closed bool
}

// wireTimeout bounds the connect handshake and each flush.
const wireTimeout = 10 * time.Second

// NewWire is a Wire that connects (lazily, and again after a failure) through dial, upgrading to
// TLS with tc when tc is not nil, as user with password.
func NewWire(dial func() (net.Conn, error), tc *tls.Config, name, user, password string) (*Wire, error) {
	if dial == nil {
		return nil, errors.New("auditread: wire without a dialer")
	}
	doc, err := json.Marshal(map[string]any{
		"verbose": false, "pedantic": false, "name": name, "lang": "go", "version": "creditledger",
		"protocol": 1, "headers": true, "no_responders": false, "echo": false,
		"user": user, "pass": password, "tls_required": tc != nil,
	})
	if err != nil {
		return nil, err
	}
	return &Wire{dial: dial, tls: tc, connect: doc}, nil
}

// Publish queues a message for subject: hdr is a whole header block ("NATS/1.0 ...\r\n...\r\n\r\n")
// or nil. Flush sends what is queued.
func (p *Wire) Publish(subject string, hdr, data []byte) error {
	if !literalSubject(subject) {
		// Written into the protocol line as it is: a space or a line break in it would end
		// the line and let the rest be read as commands of the answering identity.
		return fmt.Errorf("auditread: wire: not a subject to publish to: %.60q", subject)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ensure(); err != nil {
		return err
	}
	// The buffer flushes itself when full: a server that stops reading fails the write.
	_ = p.conn.SetWriteDeadline(time.Now().Add(wireTimeout))
	var err error
	if len(hdr) > 0 {
		_, err = fmt.Fprintf(p.w, "HPUB %s %d %d\r\n", subject, len(hdr), len(hdr)+len(data))
		if err == nil {
			_, err = p.w.Write(hdr)
		}
	} else {
		_, err = fmt.Fprintf(p.w, "PUB %s %d\r\n", subject, len(data))
	}
	if err == nil {
		_, err = p.w.Write(data)
	}
	if err == nil {
		_, err = p.w.WriteString("\r\n")
	}
	return p.failed(err)
}

// Flush writes what Publish queued to the server.
func (p *Wire) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return p.err
	}
	_ = p.conn.SetWriteDeadline(time.Now().Add(wireTimeout))
	return p.failed(p.w.Flush())
}

// Close ends the connection.
func (p *Wire) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.conn, p.err = nil, errWireClosed
}

// errWireClosed answers a Publish after Close.
var errWireClosed = errors.New("auditread: wire closed")

// failed drops the connection after a write error (the next Publish connects again). Lock held.
func (p *Wire) failed(err error) error {
	if err != nil && p.conn != nil {
		_ = p.conn.Close()
		p.conn, p.err = nil, fmt.Errorf("auditread: wire: %w", err)
	}
	return err
}

// ensure connects when there is no connection. Lock held.
func (p *Wire) ensure() error {
	if p.conn != nil {
		return nil
	}
	if p.closed {
		return errWireClosed
	}
	c, br, err := p.handshake()
	if err != nil {
		p.err = err
		return err
	}
	p.conn, p.w, p.err = c, bufio.NewWriterSize(c, 64<<10), nil
	go p.read(c, br)
	return nil
}

// handshake reads the server's INFO, starts TLS if configured, sends CONNECT and a PING, and
// waits for the PONG (an -ERR instead: bad credentials).
func (p *Wire) handshake() (net.Conn, *bufio.Reader, error) {
	c, err := p.dial()
	if err != nil {
		return nil, nil, fmt.Errorf("auditread: wire: %w", err)
	}
	fail := func(err error) (net.Conn, *bufio.Reader, error) {
		_ = c.Close()
		return nil, nil, fmt.Errorf("auditread: wire: %w", err)
	}
	_ = c.SetDeadline(time.Now().Add(wireTimeout))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fail(fmt.Errorf("expected INFO, got %.40q", line))
	}
	if p.tls != nil {
		tc := tls.Client(c, p.tls)
		if err := tc.Handshake(); err != nil {
			return fail(err)
		}
		c, br = tc, bufio.NewReader(tc)
	}
	if _, err := c.Write([]byte("CONNECT " + string(p.connect) + "\r\nPING\r\n")); err != nil {
		return fail(err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fail(err)
		}
		switch op := strings.TrimSpace(line); {
		case op == "PONG":
			_ = c.SetDeadline(time.Time{})
			return c, br, nil
		case strings.HasPrefix(op, "-ERR"):
			return fail(errors.New(op))
		case op == "PING":
			if _, err := c.Write([]byte("PONG\r\n")); err != nil {
				return fail(err)
			}
		}
	}
}

// read answers the server's pings and notes its errors until the connection ends.
func (p *Wire) read(c net.Conn, br *bufio.Reader) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			p.mu.Lock()
			if p.conn == c {
				_ = c.Close()
				p.conn, p.err = nil, fmt.Errorf("auditread: wire: %w", err)
			}
			p.mu.Unlock()
			return
		}
		switch op := strings.TrimSpace(line); {
		case op == "PING":
			p.mu.Lock()
			if p.conn == c {
				_, _ = p.w.WriteString("PONG\r\n")
				_ = p.w.Flush()
			}
			p.mu.Unlock()
		case strings.HasPrefix(op, "-ERR"):
			p.mu.Lock()
			p.err = errors.New(op)
			p.mu.Unlock()
		}
	}
}

// wireHeader is the header block of a message nats.go received: its status line (nats.go keeps
// the status and its description as the fields Status and Description) and its fields, in
// name order. Nil for a message without headers.
func wireHeader(h nats.Header) []byte {
	if len(h) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("NATS/1.0")
	st := h.Get("Status")
	if st != "" {
		b.WriteString(" " + st)
		if d := h.Get("Description"); d != "" {
			b.WriteString(" " + d)
		}
	}
	b.WriteString("\r\n")
	keys := make([]string, 0, len(h))
	for k := range h {
		if st != "" && (k == "Status" || k == "Description") {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// literalSubject reports whether s is a subject a message can be published to: tokens of
// printable characters without spaces or wildcards, separated by single dots.
func literalSubject(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '*' || c == '>' {
			return false
		}
	}
	return true
}
