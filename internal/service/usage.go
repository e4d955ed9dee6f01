package service

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
)

// UsageReader reads the usage history (*store.Store).
type UsageReader interface {
	ReadUsage(ctx context.Context, q apikey.UsageQuery) ([]apikey.UsageSeries, error)
}

// usageCursorBase is position 0 of GetUsage's page tokens.
var usageCursorBase = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// maxBuckets bounds the buckets of one series in one answer.
const maxBuckets = 10_000

var granularities = map[keyservicev1.Granularity]apikey.Granularity{
	keyservicev1.Granularity_GRANULARITY_UNSPECIFIED: apikey.Hour,
	keyservicev1.Granularity_GRANULARITY_MINUTE:      apikey.Minute,
	keyservicev1.Granularity_GRANULARITY_HOUR:        apikey.Hour,
	keyservicev1.Granularity_GRANULARITY_DAY:         apikey.Day,
}

var usageGroups = map[keyservicev1.UsageGroup]string{
	keyservicev1.UsageGroup_USAGE_GROUP_UNSPECIFIED: "",
	keyservicev1.UsageGroup_USAGE_GROUP_KEY:         "key",
	keyservicev1.UsageGroup_USAGE_GROUP_OWNER:       "owner",
}

func (s *Service) GetUsage(ctx context.Context, req *keyservicev1.GetUsageRequest) (*keyservicev1.GetUsageResponse, error) {
	q := apikey.UsageQuery{}
	var ok bool
	if q.Granularity, ok = granularities[req.GetGranularity()]; !ok {
		return nil, invalid("granularity", "must be GRANULARITY_MINUTE, GRANULARITY_HOUR or GRANULARITY_DAY")
	}
	if q.GroupBy, ok = usageGroups[req.GetGroupBy()]; !ok {
		return nil, invalid("group_by", "must be USAGE_GROUP_KEY or USAGE_GROUP_OWNER, or unset")
	}
	q.To = s.now()
	if t := req.GetTo(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, invalid("to", "is not a valid time")
		}
		q.To = t.AsTime()
	}
	q.From = q.To.Add(-24 * time.Hour)
	if f := req.GetFrom(); f != nil {
		if err := f.CheckValid(); err != nil {
			return nil, invalid("from", "is not a valid time")
		}
		q.From = f.AsTime()
	}
	w := q.Granularity.Width()
	q.From = q.From.UTC().Truncate(w)
	if !q.From.Before(q.To) {
		return nil, invalid("from", "must be before to")
	}
	if n := q.To.Sub(q.From) / w; n > maxBuckets {
		return nil, invalid("from", "the range holds %d buckets of a %s; at most %d: narrow it or use a wider granularity", n, q.Granularity, maxBuckets)
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q.Limit = size
	if err := checkOptionalText("owner", req.GetOwner(), maxOwnerLen); err != nil {
		return nil, err
	}
	q.Owner = req.GetOwner()
	if req.GetKeyId() != "" {
		id, err := parseIDField("key_id", req.GetKeyId())
		if err != nil {
			return nil, err
		}
		q.KeyID = id
		// A key of a keyspace the credential may not see is not found (its
		// usage stays readable after a revocation: the record remains).
		if _, err := s.keyIn(ctx, id); err != nil {
			return nil, notFoundAs(err, "key")
		}
	}
	ref := req.GetKeyspace()
	if ref == "" && q.Owner != "" {
		ref = apikey.DefaultKeyspaceID.String() // an owner is named within a keyspace
	}
	if q.Keyspaces, err = s.listScope(ctx, "keyspace", ref); err != nil {
		return nil, err
	}
	page := apikey.Page{List: apikey.ListUsage, Filters: []string{req.GetKeyId(), req.GetOwner(), req.GetKeyspace(), q.From.String(), q.To.String(),
		string(q.Granularity), q.GroupBy}}
	// Series are paged by position (the cursor's time carries it: usage
	// has no creation order to continue from).
	c, err := s.pageToken(page, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	if !c.IsZero() {
		q.Skip = int(c.CreatedAt.Sub(usageCursorBase) / time.Second)
	}
	series, err := s.usageReader.ReadUsage(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &keyservicev1.GetUsageResponse{Series: make([]*keyservicev1.UsageSeries, 0, len(series))}
	for _, sr := range series {
		out.Series = append(out.Series, seriesToProto(sr))
	}
	if len(series) == size && q.GroupBy != "" {
		out.NextPageToken = s.cursors.Encode(page, apikey.Cursor{CreatedAt: usageCursorBase.Add(time.Duration(q.Skip+size) * time.Second), ID: uuid.Max})
	}
	return out, nil
}

// seriesToProto sums a series' rows into points per bucket and a total.
func seriesToProto(sr apikey.UsageSeries) *keyservicev1.UsageSeries {
	out := &keyservicev1.UsageSeries{Owner: sr.Owner, KeyspaceId: sr.KeyspaceID}
	if sr.KeyID != uuid.Nil {
		out.KeyId = sr.KeyID.String()
	}
	total := &keyservicev1.UsagePoint{}
	totals := map[int16]*keyservicev1.UsageCount{}
	var pt *keyservicev1.UsagePoint
	for _, b := range sr.Buckets {
		if pt == nil || !pt.GetStart().AsTime().Equal(b.Start) {
			pt = &keyservicev1.UsagePoint{Start: timestamppb.New(b.Start)}
			out.Points = append(out.Points, pt)
		}
		if b.Code == 0 {
			pt.Reports += b.Calls
			pt.ReportedCredits += b.Credits
			total.Reports += b.Calls
			total.ReportedCredits += b.Credits
			continue
		}
		pt.Counts = append(pt.Counts, &keyservicev1.UsageCount{Code: keyservicev1.Code(b.Code), Calls: b.Calls})
		pt.Credits += b.Credits
		total.Credits += b.Credits
		tc, ok := totals[b.Code]
		if !ok {
			tc = &keyservicev1.UsageCount{Code: keyservicev1.Code(b.Code)}
			totals[b.Code] = tc
			total.Counts = append(total.Counts, tc)
		}
		tc.Calls += b.Calls
	}
	out.Total = total
	return out
}
