package client

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// cache holds the VALID answers the service marked cacheable, by the
// first 8 bytes of the key's SHA-256 (what events name; the whole hash is
// kept to tell two keys apart). Its rules:
//   - it answers only while the stream has spoken (an event or a
//     heartbeat) within staleAfter, and only entries younger than maxAge
//     and before their key's expires_at;
//   - an event naming a key drops its entry; a resync, a keyspace or
//     credential change, a credits change, or the stream refused for the
//     credential drops every entry;
//   - an answer is kept only if no event came while it was asked (epoch)
//     and it came from the replica whose events the stream follows (another
//     may not have applied a change the followed one already sent), so an
//     answer given before a change cannot outlive it.
type cache struct {
	staleAfter time.Duration
	maxAge     time.Duration
	mu         sync.RWMutex
	entries    map[uint64]*entry
	gen        atomic.Uint64 // bumped by every event, heartbeat excepted
	heard      atomic.Int64  // unix nanos of the stream's last message; 0: not live
	replica    string        // the replica the stream follows (under mu)
}

type entry struct {
	hash     [32]byte
	keyspace string // the keyspace the call named ("" none)
	until    int64  // unix nanos: maxAge or the key's expiry, the earlier
	res      Result
}

func newCache(staleAfter, maxAge time.Duration) *cache {
	return &cache{staleAfter: staleAfter, maxAge: maxAge, entries: map[uint64]*entry{}}
}

func prefixOf(b []byte) uint64 { return binary.BigEndian.Uint64(b[:8]) }

// get answers for hash h from memory when the rules allow: the same
// keyspace asked, and every scope required among the key's.
func (c *cache) get(h *[32]byte, keyspace string, scopes []string) (Result, bool) {
	now := time.Now().UnixNano()
	if heard := c.heard.Load(); heard == 0 || now-heard > int64(c.staleAfter) {
		return Result{}, false
	}
	c.mu.RLock()
	e := c.entries[prefixOf(h[:])]
	c.mu.RUnlock()
	if e == nil || e.hash != *h || e.keyspace != keyspace || now >= e.until {
		return Result{}, false
	}
	for _, s := range scopes {
		if !slices.Contains(e.res.Key.GetScopes(), s) {
			return Result{}, false
		}
	}
	return e.res, true
}

func (c *cache) epoch() uint64 { return c.gen.Load() }

// put keeps a cacheable VALID answer of replica, asked at epoch.
func (c *cache) put(h *[32]byte, keyspace string, k *keyservicev1.Key, epoch uint64, replica string) {
	until := time.Now().Add(c.maxAge).UnixNano()
	if exp := k.GetExpiresAt(); exp != nil && exp.AsTime().UnixNano() < until {
		until = exp.AsTime().UnixNano()
	}
	e := &entry{hash: *h, keyspace: keyspace, until: until,
		res: Result{Valid: true, Code: keyservicev1.Code_CODE_VALID, Key: k, Cached: true}}
	c.mu.Lock()
	if c.gen.Load() == epoch && c.heard.Load() != 0 && replica != "" && replica == c.replica {
		c.entries[prefixOf(h[:])] = e
	}
	c.mu.Unlock()
}

// drop forgets the entry of a key's prefix (every entry, for an event
// without a whole prefix).
func (c *cache) drop(prefix []byte) {
	if len(prefix) < 8 {
		c.clear()
		return
	}
	c.mu.Lock()
	c.gen.Add(1)
	delete(c.entries, prefixOf(prefix))
	c.mu.Unlock()
}

// follows records the replica the stream's events come from (a new one
// after a reconnection begins with a resync, which clears).
func (c *cache) follows(replica string) {
	c.mu.Lock()
	if c.replica != replica {
		c.gen.Add(1)
		clear(c.entries)
		c.replica = replica
	}
	c.mu.Unlock()
}

// clear forgets everything.
func (c *cache) clear() {
	c.mu.Lock()
	c.gen.Add(1)
	clear(c.entries)
	c.mu.Unlock()
}

// Len is how many answers are held.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// CacheLen is how many answers the cache holds (0 without WithCache).
func (c *Client) CacheLen() int {
	if c.cache == nil {
		return 0
	}
	return c.cache.len()
}

// CacheLive reports whether the cache answers now (its stream has spoken
// within the bound).
func (c *Client) CacheLive() bool {
	if c.cache == nil {
		return false
	}
	heard := c.cache.heard.Load()
	return heard != 0 && time.Now().UnixNano()-heard <= int64(c.cache.staleAfter)
}

// watch follows WatchKeyEvents until ctx ends, resuming from the last
// cursor after a break (the service sends a resync when it cannot).
func (c *Client) watch(ctx context.Context) {
	defer close(c.done)
	cursor := ""
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := c.follow(ctx, &cursor, func() { backoff = 50 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
			// The credential may not watch (or no longer may): nothing
			// held may be trusted.
			c.cache.heard.Store(0)
			c.cache.clear()
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// follow reads one stream until it breaks.
func (c *Client) follow(ctx context.Context, cursor *string, connected func()) error {
	if c.md != nil {
		ctx = metadataContext(ctx, c)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.WatchKeyEvents(sctx, &keyservicev1.WatchKeyEventsRequest{Cursor: *cursor})
	if err != nil {
		return err
	}
	// The stream vouches for the cache only once it has caught up: the
	// service sends the events missed since cursor, then a heartbeat.
	live := false
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		switch ev.GetKind() {
		case keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT:
		case keyservicev1.KeyEventKind_KEY_EVENT_KIND_CREATED:
			// A new key: nothing held is about it (only VALID answers are).
		case keyservicev1.KeyEventKind_KEY_EVENT_KIND_UPDATED, keyservicev1.KeyEventKind_KEY_EVENT_KIND_REVOKED:
			c.cache.drop(ev.GetKeyHashPrefix())
		default: // resync, keyspaces and credentials, credits, and kinds this version does not know
			c.cache.clear()
		}
		*cursor = ev.GetCursor()
		if replica, _, ok := strings.Cut(*cursor, "."); ok {
			c.cache.follows(replica)
		}
		switch ev.GetKind() {
		case keyservicev1.KeyEventKind_KEY_EVENT_KIND_HEARTBEAT, keyservicev1.KeyEventKind_KEY_EVENT_KIND_RESYNC:
			if !live {
				live = true
				connected()
			}
		}
		if live {
			c.cache.heard.Store(time.Now().UnixNano())
		}
	}
}

func metadataContext(ctx context.Context, c *Client) context.Context { return c.Outgoing(ctx) }
