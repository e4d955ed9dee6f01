package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/store/dbsqlc"
)

// Usage history (internal/usage writes it, GetUsage reads it): minutes in
// daily partitions of usage_minutes, hours and days rolled up as they are
// written, in the same transaction.

type usageCols struct {
	buckets   []time.Time
	keyIDs    []uuid.UUID
	codes     []int16
	keyspaces []uuid.UUID
	owners    []string
	calls     []int64
	credits   []int64
}

// rollUp sums rows into buckets of width g (one row per bucket, key and
// code: an upsert may not touch one row twice).
func rollUp(rows []apikey.UsageRow, g apikey.Granularity) usageCols {
	type k struct {
		b    time.Time
		key  uuid.UUID
		code int16
	}
	idx := map[k]int{}
	var c usageCols
	for _, r := range rows {
		b := r.Minute.UTC().Truncate(g.Width())
		i, ok := idx[k{b, r.KeyID, r.Code}]
		if !ok {
			i = len(c.buckets)
			idx[k{b, r.KeyID, r.Code}] = i
			c.buckets, c.keyIDs, c.codes = append(c.buckets, b), append(c.keyIDs, r.KeyID), append(c.codes, r.Code)
			c.keyspaces, c.owners = append(c.keyspaces, r.KeyspaceID), append(c.owners, r.Owner)
			c.calls, c.credits = append(c.calls, 0), append(c.credits, 0)
		}
		c.calls[i] += r.Calls
		c.credits[i] += r.Credits
	}
	return c
}

// WriteUsage adds rows to the minutes, hours and days, in one transaction:
// all of them or none. A minute whose day has no partition yet gets one,
// and the write is tried again once.
func (s *Store) WriteUsage(ctx context.Context, rows []apikey.UsageRow) error {
	if len(rows) == 0 {
		return nil
	}
	err := s.writeUsage(ctx, rows)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.CheckViolation && strings.Contains(pgErr.Message, "partition") {
		days := map[time.Time]bool{}
		for _, r := range rows {
			days[r.Minute.UTC().Truncate(24*time.Hour)] = true
		}
		for d := range days {
			if err := s.EnsureUsagePartitions(ctx, d, d); err != nil {
				return err
			}
		}
		err = s.writeUsage(ctx, rows)
	}
	return err
}

func (s *Store) writeUsage(ctx context.Context, rows []apikey.UsageRow) error {
	return s.inTx(ctx, func(tx *writeTx) error {
		for _, g := range []apikey.Granularity{apikey.Minute, apikey.Hour, apikey.Day} {
			c := rollUp(rows, g)
			var err error
			switch g {
			case apikey.Minute:
				err = s.q.UpsertUsageMinutes(ctx, tx, dbsqlc.UpsertUsageMinutesParams{Buckets: c.buckets, KeyIDs: c.keyIDs, Codes: c.codes,
					Keyspaces: c.keyspaces, Owners: c.owners, Calls: c.calls, Credits: c.credits})
			case apikey.Hour:
				err = s.q.UpsertUsageHours(ctx, tx, dbsqlc.UpsertUsageHoursParams{Buckets: c.buckets, KeyIDs: c.keyIDs, Codes: c.codes,
					Keyspaces: c.keyspaces, Owners: c.owners, Calls: c.calls, Credits: c.credits})
			case apikey.Day:
				err = s.q.UpsertUsageDays(ctx, tx, dbsqlc.UpsertUsageDaysParams{Buckets: c.buckets, KeyIDs: c.keyIDs, Codes: c.codes,
					Keyspaces: c.keyspaces, Owners: c.owners, Calls: c.calls, Credits: c.credits})
			}
			if err != nil {
				return fmt.Errorf("writing usage by %s: %w", g, err)
			}
		}
		return nil
	})
}

const partitionPrefix = "usage_minutes_"

// EnsureUsagePartitions creates the daily partitions of usage_minutes from
// day `from` to day `to` (UTC) that do not exist, one replica at a time.
func (s *Store) EnsureUsagePartitions(ctx context.Context, from, to time.Time) error {
	return s.inTx(ctx, func(tx *writeTx) error {
		if err := s.q.LockUsageMaintenance(ctx, tx); err != nil {
			return fmt.Errorf("locking usage maintenance: %w", err)
		}
		for d := from.UTC().Truncate(24 * time.Hour); !d.After(to); d = d.Add(24 * time.Hour) {
			// The name and bounds come from a date, never from input.
			sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s PARTITION OF usage_minutes FOR VALUES FROM ('%s') TO ('%s')",
				partitionPrefix, d.Format("20060102"), d.Format(time.RFC3339), d.Add(24*time.Hour).Format(time.RFC3339))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("creating usage partition: %w", err)
			}
		}
		return nil
	})
}

// PruneUsage drops the minute partitions of days that ended before
// minutesBefore, and deletes hours and days before theirs; it reports what
// it dropped and deleted.
func (s *Store) PruneUsage(ctx context.Context, minutesBefore, hoursBefore, daysBefore time.Time) (partitions int, rows int64, err error) {
	err = s.inTx(ctx, func(tx *writeTx) error {
		if err := s.q.LockUsageMaintenance(ctx, tx); err != nil {
			return fmt.Errorf("locking usage maintenance: %w", err)
		}
		names, err := s.q.UsagePartitions(ctx, tx)
		if err != nil {
			return fmt.Errorf("listing usage partitions: %w", err)
		}
		for _, n := range names {
			day, err := time.Parse("20060102", strings.TrimPrefix(n, partitionPrefix))
			if err != nil || !strings.HasPrefix(n, partitionPrefix) {
				continue // not one of ours
			}
			if !day.Add(24 * time.Hour).After(minutesBefore) {
				if _, err := tx.Exec(ctx, "DROP TABLE "+partitionPrefix+day.Format("20060102")); err != nil {
					return fmt.Errorf("dropping usage partition: %w", err)
				}
				partitions++
			}
		}
		h, err := s.q.DeleteUsageHoursBefore(ctx, tx, hoursBefore)
		if err != nil {
			return fmt.Errorf("deleting old usage hours: %w", err)
		}
		d, err := s.q.DeleteUsageDaysBefore(ctx, tx, daysBefore)
		if err != nil {
			return fmt.Errorf("deleting old usage days: %w", err)
		}
		rows = h + d
		return nil
	})
	return partitions, rows, err
}

// ReadUsage reads usage history as series of buckets.
func (s *Store) ReadUsage(ctx context.Context, q apikey.UsageQuery) ([]apikey.UsageSeries, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	group := q.GroupBy
	if group == "" {
		group = "none"
	}
	var key pgtype.UUID
	if q.KeyID != uuid.Nil {
		key = pgtype.UUID{Bytes: q.KeyID, Valid: true}
	}
	type row struct {
		series, keyspace, owner string
		bucket                  time.Time
		code                    int16
		calls, credits          int64
	}
	var rows []row
	switch q.Granularity {
	case apikey.Minute:
		rs, err := s.q.ReadUsageMinutes(ctx, conn, dbsqlc.ReadUsageMinutesParams{GroupBy: group, FromTime: q.From, ToTime: q.To, KeyID: key,
			KeyspaceIDs: q.Keyspaces, Owner: q.Owner, Skip: int32(q.Skip), MaxSeries: int32(q.Limit)})
		if err != nil {
			return nil, classify(fmt.Errorf("reading usage: %w", err))
		}
		for _, r := range rs {
			rows = append(rows, row{r.Series, r.KeyspaceID, r.Owner, r.Bucket, r.Code, r.Calls, r.Credits})
		}
	case apikey.Day:
		rs, err := s.q.ReadUsageDays(ctx, conn, dbsqlc.ReadUsageDaysParams{GroupBy: group, FromTime: q.From, ToTime: q.To, KeyID: key,
			KeyspaceIDs: q.Keyspaces, Owner: q.Owner, Skip: int32(q.Skip), MaxSeries: int32(q.Limit)})
		if err != nil {
			return nil, classify(fmt.Errorf("reading usage: %w", err))
		}
		for _, r := range rs {
			rows = append(rows, row{r.Series, r.KeyspaceID, r.Owner, r.Bucket, r.Code, r.Calls, r.Credits})
		}
	default:
		rs, err := s.q.ReadUsageHours(ctx, conn, dbsqlc.ReadUsageHoursParams{GroupBy: group, FromTime: q.From, ToTime: q.To, KeyID: key,
			KeyspaceIDs: q.Keyspaces, Owner: q.Owner, Skip: int32(q.Skip), MaxSeries: int32(q.Limit)})
		if err != nil {
			return nil, classify(fmt.Errorf("reading usage: %w", err))
		}
		for _, r := range rs {
			rows = append(rows, row{r.Series, r.KeyspaceID, r.Owner, r.Bucket, r.Code, r.Calls, r.Credits})
		}
	}
	var out []apikey.UsageSeries
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Series != r.series {
			sr := apikey.UsageSeries{Series: r.series}
			switch q.GroupBy {
			case "key":
				sr.KeyID, _ = uuid.Parse(r.series)
				sr.KeyspaceID, sr.Owner = r.keyspace, r.owner
			case "owner":
				sr.KeyspaceID, sr.Owner = r.keyspace, r.owner
			}
			out = append(out, sr)
		}
		last := &out[len(out)-1]
		last.Buckets = append(last.Buckets, apikey.UsageBucket{Start: r.bucket, Code: r.code, Calls: r.calls, Credits: r.credits})
	}
	return out, nil
}
