// Package pgfault is a TCP proxy in front of PostgreSQL that loses the
// answer to a COMMIT: the server commits, and the client sees its
// connection break before it learns so (an ambiguous commit). Tests use it
// to prove that such a write answers UNAVAILABLE and that its retry is safe.
//
// It reads the frontend protocol (the startup, then typed messages) on the
// client's side to find the transactions that ran a statement with a
// marker in its text (simple Query, or Parse and the Binds that name the
// parsed statement later), and their COMMIT. Everything else passes through
// untouched.
package pgfault

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// Proxy forwards TCP connections to a PostgreSQL server.
type Proxy struct {
	l        net.Listener
	upstream string
	wg       sync.WaitGroup

	mu     sync.Mutex
	marker string        // armed: the next transaction that ran a statement containing it
	cut    chan struct{} // closed once its COMMIT was answered and dropped

	roundTrips atomic.Int64
}

// RoundTrips counts the client's messages after which it waits for the
// server's answer (Sync, and simple Query) on every connection: how many
// times the client's work waited for the server.
func (p *Proxy) RoundTrips() int64 { return p.roundTrips.Load() }

// Start listens on a loopback port and forwards to upstream (host:port).
func Start(upstream string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, upstream: upstream}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Close stops accepting and waits for the open connections to end.
func (p *Proxy) Close() {
	p.l.Close()
	p.wg.Wait()
}

// CutNextCommit arms the proxy: the next transaction, on any connection,
// that runs a statement whose text contains marker (case-insensitive) has
// its COMMIT forwarded, and when the server answers, the answer is dropped
// and both sides of that connection are closed. The returned channel is
// closed then.
func (p *Proxy) CutNextCommit(marker string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marker = strings.ToLower(marker)
	p.cut = make(chan struct{})
	return p.cut
}

// claim disarms the proxy if text contains its marker, returning the
// marker and the channel to close once the commit's answer is dropped.
func (p *Proxy) claim(text string) (string, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.marker == "" || !strings.Contains(strings.ToLower(text), p.marker) {
		return "", nil
	}
	m := p.marker
	p.marker = ""
	return m, p.cut
}

// rearm gives back a claim whose transaction rolled back.
func (p *Proxy) rearm(marker string, cut chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.marker == "" && p.cut == cut {
		p.marker = marker
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// session is one proxied connection.
type session struct {
	p          *Proxy
	client, db net.Conn
	once       sync.Once
	// statements maps a prepared statement's name to its text.
	statements map[string]string
	// victim is set when this connection's transaction claimed the armed
	// cut; commitSent once its COMMIT went to the server.
	mu         sync.Mutex
	victim     chan struct{}
	marker     string
	commitSent bool
}

func (p *Proxy) serve(c net.Conn) {
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		c.Close()
		return
	}
	s := &session{p: p, client: c, db: u, statements: map[string]string{}}
	var wg sync.WaitGroup
	wg.Go(func() { s.fromClient(); s.close() })
	wg.Go(func() { s.fromServer(); s.close() })
	wg.Wait()
}

func (s *session) close() {
	s.once.Do(func() {
		s.client.Close()
		s.db.Close()
	})
}

// fromServer forwards the server's bytes, except the answer to a cut
// COMMIT: the client sends nothing after COMMIT until it has the answer,
// so whatever the server sends once COMMIT went out is that answer.
func (s *session) fromServer() {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.db.Read(buf)
		if n > 0 {
			s.mu.Lock()
			victim, sent := s.victim, s.commitSent
			s.mu.Unlock()
			if victim != nil && sent {
				s.close()
				close(victim)
				return
			}
			if _, werr := s.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// fromClient forwards the client's messages one by one, watching for the
// marked transaction and its COMMIT.
func (s *session) fromClient() {
	r := bufio.NewReaderSize(s.client, 32<<10)
	// Startup: untyped messages (length, then payload) until the startup
	// message itself; SSL and GSS requests come before it.
	for {
		msg, err := readUntyped(r)
		if err != nil {
			return
		}
		if _, err := s.db.Write(msg); err != nil {
			return
		}
		if len(msg) >= 8 {
			switch binary.BigEndian.Uint32(msg[4:8]) {
			case 80877103, 80877104: // SSLRequest, GSSENCRequest
				continue
			}
		}
		break
	}
	for {
		typ, msg, err := readTyped(r)
		if err != nil {
			return
		}
		if typ == 'S' || typ == 'Q' {
			s.p.roundTrips.Add(1)
		}
		s.watch(typ, msg[5:])
		if _, err := s.db.Write(msg); err != nil {
			return
		}
	}
}

// watch follows one client message: the statement texts it names, and
// whether it commits the marked transaction.
func (s *session) watch(typ byte, body []byte) {
	// A Parse only names a statement (pgx parses a batch's statements,
	// COMMIT among them, before it runs any): a statement runs at its
	// Bind, or as a simple Query.
	var t string
	switch typ {
	case 'Q': // Query: text
		t = cstring(body)
	case 'P': // Parse: name, text, ...
		name := cstring(body)
		s.statements[name] = cstring(body[min(len(name)+1, len(body)):])
		return
	case 'B': // Bind: portal, statement, ...
		portal := cstring(body)
		t = s.statements[cstring(body[min(len(portal)+1, len(body)):])]
	default:
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.victim != nil && isCommit(t):
		s.commitSent = true // set before the COMMIT is forwarded
	case s.victim != nil && isRollback(t):
		s.p.rearm(s.marker, s.victim) // not the transaction to cut after all
		s.victim, s.marker = nil, ""
	case s.victim == nil:
		s.marker, s.victim = s.p.claim(t)
	}
}

func isCommit(text string) bool {
	t := strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), ";")))
	return t == "commit" || t == "end" || t == "commit transaction" || t == "commit work"
}

func isRollback(text string) bool {
	t := strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), ";")))
	return t == "rollback" || t == "abort"
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// readUntyped reads a startup-phase message: int32 length (itself
// included), then the payload. It returns the whole message.
func readUntyped(r *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 4 || n > 1<<20 {
		return nil, io.ErrUnexpectedEOF
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	_, err := io.ReadFull(r, msg[4:])
	return msg, err
}

// readTyped reads a message: a type byte, int32 length (itself included),
// then the payload. It returns the type and the whole message.
func readTyped(r *bufio.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 1<<30 {
		return 0, nil, io.ErrUnexpectedEOF
	}
	msg := make([]byte, 1+n)
	copy(msg, hdr[:])
	_, err := io.ReadFull(r, msg[5:])
	return hdr[0], msg, err
}
