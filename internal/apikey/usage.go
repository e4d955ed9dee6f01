package apikey

import (
	"time"

	"github.com/google/uuid"
)

// UsageRow is the usage of one key in one minute with one outcome code
// (0: reported charges), as a flush writes it.
type UsageRow struct {
	Minute     time.Time
	KeyID      uuid.UUID
	Code       int16
	KeyspaceID uuid.UUID
	Owner      string
	Calls      int64
	Credits    int64
}

// Granularity is the width of a usage bucket.
type Granularity string

// The granularities (each its own table).
const (
	Minute Granularity = "minute"
	Hour   Granularity = "hour"
	Day    Granularity = "day"
)

// Width is the bucket's width.
func (g Granularity) Width() time.Duration {
	switch g {
	case Minute:
		return time.Minute
	case Day:
		return 24 * time.Hour
	}
	return time.Hour
}

// UsageQuery selects usage history.
type UsageQuery struct {
	From, To    time.Time
	Granularity Granularity
	KeyID       uuid.UUID   // uuid.Nil: every key
	Keyspaces   []uuid.UUID // nil: every keyspace
	Owner       string      // "": every owner
	// GroupBy is "key", "owner" or "" (one series).
	GroupBy string
	Skip    int // series on earlier pages
	Limit   int
}

// UsageBucket is one series' usage in one bucket with one code.
type UsageBucket struct {
	Start   time.Time
	Code    int16
	Calls   int64
	Credits int64
}

// UsageSeries is the usage of one key, one owner, or everything selected.
type UsageSeries struct {
	Series     string // the paging key
	KeyID      uuid.UUID
	KeyspaceID string
	Owner      string
	Buckets    []UsageBucket
}
