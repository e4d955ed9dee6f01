package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// ImportedKey is a key that exists already (in customers' hands) and is
// brought into keyservice by its hash.
type ImportedKey struct {
	apikey.NewKey
	RevokedAt *time.Time
}

// ImportResult says what an import did.
type ImportResult struct {
	Imported   int64 // new keys stored
	Duplicates int64 // hashes already stored, or repeated in the input: skipped
}

// importBatch is how many keys one transaction of an import stores.
const importBatch = 10_000

// ImportKeys stores ks by COPY, in transactions of importBatch keys,
// skipping hashes that are already stored or repeated: importing the same
// keys twice stores them once, so an import cut short is finished by
// running it again. No NOTIFY is sent (a million of them would flood every
// replica): the replicas' incremental sync finds the new keys within
// KEYSERVICE_SYNC_INTERVAL. Short transactions matter for that: a row's
// created_at is its transaction's start, and sync reads back only
// KEYSERVICE_SYNC_OVERLAP (30 s) before its watermark, so a batch must
// commit well within that.
func (s *Store) ImportKeys(ctx context.Context, ks []ImportedKey) (ImportResult, error) {
	var res ImportResult
	seen := make(map[keys.Hash]bool, len(ks))
	for start := 0; start < len(ks); start += importBatch {
		batch := ks[start:min(start+importBatch, len(ks))]
		err := s.inTx(ctx, func(tx *writeTx) error {
			rows := make([]dbsqlc.CopyKeysParams, 0, len(batch))
			hashes := make([][]byte, len(batch))
			for i := range batch {
				hashes[i] = batch[i].Hash[:]
			}
			existing, err := s.q.ExistingHashes(ctx, tx, hashes)
			if err != nil {
				return fmt.Errorf("checking for keys already stored: %w", err)
			}
			for _, h := range existing {
				var k keys.Hash
				copy(k[:], h)
				seen[k] = true
			}
			for i := range batch {
				k := &batch[i]
				if seen[k.Hash] {
					res.Duplicates++
					continue
				}
				seen[k.Hash] = true
				p, err := importRow(k)
				if err != nil {
					return err
				}
				rows = append(rows, p)
			}
			n, err := s.q.CopyKeys(ctx, tx, rows)
			if err != nil {
				return fmt.Errorf("copying keys: %w", err)
			}
			res.Imported += n
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func importRow(k *ImportedKey) (dbsqlc.CopyKeysParams, error) {
	meta, err := json.Marshal(nonNilMap(k.Metadata))
	if err != nil {
		return dbsqlc.CopyKeysParams{}, fmt.Errorf("encoding metadata: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return dbsqlc.CopyKeysParams{}, err
	}
	p := dbsqlc.CopyKeysParams{
		ID: id, KeyHash: append([]byte(nil), k.Hash[:]...), Hint: k.Hint, Name: k.Name, Owner: k.Owner,
		Scopes: nonNilSlice(k.Scopes), Metadata: meta, ExpiresAt: storedTime(k.ExpiresAt), RevokedAt: storedTime(k.RevokedAt),
		AllowedCIDRs: cidrStrings(k.AllowedCIDRs),
	}
	p.RateLimit, p.RatePeriod, p.RateBurst = rateColumns(storedRate(k.RateLimit))
	return p, nil
}

// StoredHashes returns which of hs are the hashes of stored keys (keyservice
// import refuses a hint that is a stored key's secret).
func (s *Store) StoredHashes(ctx context.Context, hs []keys.Hash) (map[keys.Hash]bool, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	out := map[keys.Hash]bool{}
	for start := 0; start < len(hs); start += importBatch {
		batch := hs[start:min(start+importBatch, len(hs))]
		arg := make([][]byte, len(batch))
		for i := range batch {
			arg[i] = batch[i][:]
		}
		found, err := s.q.ExistingHashes(ctx, conn, arg)
		if err != nil {
			return nil, classify(fmt.Errorf("looking up hashes: %w", err))
		}
		for _, h := range found {
			var k keys.Hash
			copy(k[:], h)
			out[k] = true
		}
	}
	return out, nil
}
