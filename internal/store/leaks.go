package store

import (
	"context"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// LeakReport is a report that a key was found in public (GitHub secret
// scanning), and what was done about it.
type LeakReport struct {
	KeyID     uuid.UUID
	URL       string
	Source    string
	TokenType string
	Action    string // "revoked", "flagged" or "already_revoked"
}

// RecordLeak stores r once per key and URL; recorded is false when the
// same report was recorded before.
func (s *Store) RecordLeak(ctx context.Context, r LeakReport) (recorded bool, err error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	n, err := s.q.InsertLeakReport(ctx, conn, dbsqlc.InsertLeakReportParams{
		KeyID: r.KeyID, Url: r.URL, Source: r.Source, TokenType: r.TokenType, Action: r.Action,
	})
	return n == 1, classify(err)
}
