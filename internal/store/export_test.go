package store

import "context"

// HoldConn takes one of the store's connections, as a query in flight
// would, until the returned func gives it back.
func (s *Store) HoldConn(ctx context.Context) (release func(), err error) {
	c, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return c.Release, nil
}
