// Package keyevents is a replica's log of the changes it learns of (its
// own writes, other replicas' NOTIFYs, what the incremental sync finds),
// kept for a bounded window so that WatchKeyEvents streams can follow it
// and resume from a cursor. A cursor names this process (a random id made
// at start) and a sequence number: on another replica, after a restart, or
// once the window has moved past it, it cannot be resumed and the stream
// starts with a resync.
package keyevents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
)

// Kind is what an event says.
type Kind uint8

// The kinds, as the API's KeyEventKind names them.
const (
	Created Kind = iota + 1
	Updated
	Revoked
	// Tenancy: keyspaces or credentials changed (or were read again
	// after a reconnection, when changes may have been missed).
	Tenancy
	// Credits: a key's or an owner's credits changed.
	Credits
)

// PrefixLen is how much of a key's SHA-256 an event carries: enough to
// drop the right answers, too little to name a key.
const PrefixLen = 8

// Event is one change.
type Event struct {
	Seq  uint64
	Kind Kind
	// Prefix is the start of the key's SHA-256 (Created, Updated,
	// Revoked).
	Prefix [PrefixLen]byte
	// Keyspace is the key's keyspace when the replica knew it (uuid.Nil:
	// unknown, sent to every watcher).
	Keyspace uuid.UUID
	At       time.Time
}

// DefaultWindow is how many events a log keeps: at 48 bytes an event,
// 3 MiB, minutes of changes even during a large import.
const DefaultWindow = 1 << 16

// Log is the window of recent events. Publish never blocks on a watcher:
// one that falls more than the window behind is told to resync.
type Log struct {
	boot string
	now  func() time.Time
	mu   sync.Mutex
	ring []Event
	next uint64        // the sequence number of the next event; the first is 1
	wake chan struct{} // closed (and replaced) by every Publish
	done chan struct{} // closed by Close
	once sync.Once
}

// New makes a log keeping window events (DefaultWindow when ≤ 0).
func New(window int) *Log {
	if window <= 0 {
		window = DefaultWindow
	}
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return &Log{boot: hex.EncodeToString(b[:]), now: time.Now, ring: make([]Event, window), next: 1, wake: make(chan struct{}), done: make(chan struct{})}
}

// Publish adds an event.
func (l *Log) Publish(kind Kind, hash []byte, keyspace uuid.UUID) {
	if l == nil {
		return
	}
	e := Event{Kind: kind, Keyspace: keyspace, At: l.now()}
	copy(e.Prefix[:], hash)
	l.mu.Lock()
	e.Seq = l.next
	l.ring[e.Seq%uint64(len(l.ring))] = e
	l.next++
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// Close ends every stream following the log (the replica is shutting
// down: a stream would hold its graceful stop until the drain timeout).
func (l *Log) Close() { l.once.Do(func() { close(l.done) }) }

// Done is closed by Close.
func (l *Log) Done() <-chan struct{} { return l.done }

// Replica is this process's id, which begins every cursor.
func (l *Log) Replica() string { return l.boot }

// Cursor is where a watcher stands after the event numbered seq.
func (l *Log) Cursor(seq uint64) string {
	return l.boot + "." + strconv.FormatUint(seq, 10)
}

// Head is the sequence number of the newest event (0 before any).
func (l *Log) Head() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1
}

// Resume is where a watcher presenting cursor goes on from: the sequence
// number of the last event it has. ok is false when the cursor cannot be
// resumed here (another process's, malformed, from the future, or older
// than the window): the watcher must resync, from Head.
func (l *Log) Resume(cursor string) (after uint64, ok bool) {
	boot, n, found := strings.Cut(cursor, ".")
	seq, err := strconv.ParseUint(n, 10, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	head := l.next - 1
	if !found || err != nil || boot != l.boot || seq > head || head-seq > uint64(len(l.ring)) {
		return head, false
	}
	return seq, true
}

// Read copies into buf the events after after (at most len(buf)). lost
// says events after after have already left the window (the watcher must
// resync from Head). wake is closed when an event newer than those
// returned is published.
func (l *Log) Read(after uint64, buf []Event) (events []Event, lost bool, wake <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	head := l.next - 1
	if head-after > uint64(len(l.ring)) {
		return nil, true, l.wake
	}
	n := 0
	for seq := after + 1; seq <= head && n < len(buf); seq++ {
		buf[n] = l.ring[seq%uint64(len(l.ring))]
		n++
	}
	return buf[:n], false, l.wake
}

// Handler passes every change on to next, then publishes credits
// changes (key changes are published by the validation path as it applies
// them, whatever their source; keyspace, credential and owner changes by
// the registry once it has read them: tenancy.Config.Changed).
func (l *Log) Handler(next apikey.ChangeHandler) apikey.ChangeHandler {
	return handler{l: l, next: next}
}

type handler struct {
	l    *Log
	next apikey.ChangeHandler
}

func (h handler) Changed(e apikey.Event) {
	h.next.Changed(e)
	if e.Kind == apikey.EventCredits {
		h.l.Publish(Credits, nil, uuid.Nil)
	}
}

func (h handler) StreamLost() { h.next.StreamLost() }

// CatchUp: after a reconnection the sync reads the changes missed, but
// publishes none that memory already reflects (or no longer holds), which
// a caller's cache may still hold: every watcher drops everything.
func (h handler) CatchUp(ctx context.Context) error {
	err := h.next.CatchUp(ctx)
	h.l.Publish(Tenancy, nil, uuid.Nil)
	return err
}
func (h handler) ListenError(err error) { h.next.ListenError(err) }
