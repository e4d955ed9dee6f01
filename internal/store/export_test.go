package store

import (
	"context"
	"time"
)

// HoldConn takes one of the store's connections, as a query in flight
// would, until the returned func gives it back.
func (s *Store) HoldConn(ctx context.Context) (release func(), err error) {
	c, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return c.Release, nil
}

// SetSlotReportEvery sets how often an episode without a free connection
// slot is reported (and how long it must stay over to be reported ended).
func (s *Store) SetSlotReportEvery(d time.Duration) { s.slots.reportEvery = d }

// MaxConnLifetime is the pool's.
func (s *Store) MaxConnLifetime() time.Duration { return s.pool.Config().MaxConnLifetime }

// LogBuffer collects log lines written from many goroutines.
type LogBuffer = syncBuf

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ReadFilterChunks reads a snapshot's filter chunks as LoadSnapshot does
// once it has read the snapshot's row.
func ReadFilterChunks(s *Store, ctx context.Context, id, total int64) ([]byte, error) {
	return s.readChunks(ctx, id, partFilter, total)
}
