package console

import (
	"html/template"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

// funcs are the templates' helpers: how times, durations, numbers and
// values read on a page.
var funcs = template.FuncMap{
	"inc":     func(n int) int { return n + 1 },
	"stateOf": stateOf,
	"num":     num,
	"join":    func(s []string) string { return strings.Join(s, " ") },
	"ts": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return "—"
		}
		return t.AsTime().UTC().Format("2006-01-02 15:04 UTC")
	},
	"day": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return ""
		}
		return t.AsTime().UTC().Format(time.DateOnly)
	},
	"dur": func(d *durationpb.Duration) string {
		v := d.AsDuration()
		switch {
		case v%(24*time.Hour) == 0:
			if v == 24*time.Hour {
				return "day"
			}
			return num(int64(v/(24*time.Hour))) + " days"
		case v == time.Hour:
			return "hour"
		case v == time.Minute:
			return "minute"
		case v == time.Second:
			return "second"
		}
		return v.String()
	},
	"refill": func(r *keyservicev1.Refill) string {
		switch r.GetInterval() {
		case keyservicev1.RefillInterval_REFILL_INTERVAL_DAILY:
			return "every day"
		case keyservicev1.RefillInterval_REFILL_INTERVAL_MONTHLY:
			return "every month"
		case keyservicev1.RefillInterval_REFILL_INTERVAL_EVERY:
			return "every " + r.GetEvery().AsDuration().String()
		}
		return ""
	},
	"short": func(id string) string {
		if len(id) > 8 {
			return id[:8]
		}
		return id
	},
	"val": func(v *structpb.Value) string {
		if v == nil {
			return "none"
		}
		if _, ok := v.GetKind().(*structpb.Value_NullValue); ok {
			return "none"
		}
		if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
			return s.StringValue
		}
		b, err := protojson.Marshal(v)
		if err != nil {
			return "?"
		}
		return string(b)
	},
}
