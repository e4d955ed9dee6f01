package store

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// ReportLeak acts on r in one transaction, under the key's row lock: with
// revoke, a live key is revoked (audited, NOTIFY) and the report recorded
// as revoked; without, as flagged; a revoked key's report is recorded as
// already_revoked. A report is recorded once per key and URL: delivered
// again, it records nothing. Either the revocation and its record both
// commit or neither does, so a report that failed half-way is retried in
// full. The returned key is as it is after the report (RevokedAt set when
// revoked); action is what the report did.
func (s *Store) ReportLeak(ctx context.Context, r apikey.LeakReport, revoke bool) (out apikey.Key, action string, err error) {
	err = s.inTx(ctx, func(tx *writeTx) error {
		k, err := s.lockKey(ctx, tx, r.KeyID)
		if err != nil {
			return err
		}
		switch {
		case k.RevokedAt != nil:
			action = apikey.LeakAlreadyRevoked
		case revoke:
			action = apikey.LeakRevoked
			if k, err = s.revoke(ctx, tx, k); err != nil {
				return err
			}
		default:
			action = apikey.LeakFlagged
		}
		out = k
		sum := sha256.Sum256([]byte(r.URL))
		if _, err := s.q.InsertLeakReport(ctx, tx, dbsqlc.InsertLeakReportParams{
			KeyID: r.KeyID, Url: r.URL, UrlSha256: sum[:], Source: r.Source, TokenType: r.TokenType, Action: action,
		}); err != nil {
			return fmt.Errorf("recording leak report: %w", err)
		}
		return nil
	})
	return out, action, err
}
