package bench

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Who refused a call: every call that got an error instead of an answer is
// counted under one of these (Result.Refused), so a run that the service
// mostly turned away cannot pass for a fast one.
const (
	byCallerBudget = "caller budget"
	byGuard        = "failed-attempt guard"
	byDatabase     = "database unavailable"
	byCredential   = "no caller credential"
)

// refusalHints say what to change when a kind of refusal spoils a run.
var refusalHints = map[string]string{
	byCallerBudget: "raise KEYSERVICE_CALLER_RATE and KEYSERVICE_CALLER_BURST (or KEYSERVICE_CALLER_LIMITS for the bench's caller) on the service",
	byGuard:        "raise KEYSERVICE_FAILED_RATE and KEYSERVICE_FAILED_BURST on the service",
	byDatabase:     "the service could not reach its database",
	byCredential:   "the service wants a caller credential (caller tokens or a client CA are configured)",
}

// judgeRefusedMax is the share of a run's calls that may be refused
// (other than the refusals a target counts itself) before its targets
// cannot be judged: past it, the throughput, latency and lookups are those
// of a service turning calls away.
const judgeRefusedMax = 0.01

// restRefusal is a REST call answered with an error status: its Error is
// "HTTP <status>" (the name errors are counted under), and it keeps the
// body's status name and message to tell who refused.
type restRefusal struct {
	httpStatus int
	name, msg  string
}

func (e *restRefusal) Error() string { return fmt.Sprintf("HTTP %d", e.httpStatus) }

// refusalBy names who refused a call that ended in err.
func refusalBy(err error) string {
	var code codes.Code
	var msg string
	var rr *restRefusal
	switch st, ok := status.FromError(err); {
	case errors.As(err, &rr):
		msg = rr.msg
		switch rr.httpStatus {
		case 429:
			code = codes.ResourceExhausted
		case 503:
			code = codes.Unavailable
		case 401:
			code = codes.Unauthenticated
		default:
			return rr.Error() + " " + rr.name
		}
	case ok:
		code, msg = st.Code(), st.Message()
	default:
		return "transport"
	}
	switch {
	case code == codes.ResourceExhausted && strings.Contains(msg, "caller over its rate limit"):
		return byCallerBudget
	case code == codes.ResourceExhausted && strings.Contains(msg, "failed validations"):
		return byGuard
	case code == codes.Unavailable:
		return byDatabase
	case code == codes.Unauthenticated:
		return byCredential
	}
	return code.String()
}

// unjudgeable says why r's targets cannot be judged ("" when they can):
// more than judgeRefusedMax of its calls were refused, not counting the
// refusals named in counted (a target that counts them judges them).
func (r *Result) unjudgeable(counted ...string) string {
	if r == nil {
		return ""
	}
	return tooRefused(r.Scenario+"/"+r.Transport+"/"+r.Mode, r.Refused, r.Requests, counted...)
}

// tooRefused says, for what (a row, a flood), who refused more than
// judgeRefusedMax of its calls and what to change; "" when they did not.
// Refusals named in counted are left out.
func tooRefused(what string, refusedBy map[string]int, calls int64, counted ...string) string {
	if calls <= 0 {
		return ""
	}
	type part struct {
		by string
		n  int
	}
	var parts []part
	refused := 0
	for by, n := range refusedBy {
		if n > 0 && !slices.Contains(counted, by) {
			refused += n
			parts = append(parts, part{by, n})
		}
	}
	if float64(refused)/float64(calls) <= judgeRefusedMax {
		return ""
	}
	sort.Slice(parts, func(i, j int) bool {
		return parts[i].n > parts[j].n || parts[i].n == parts[j].n && parts[i].by < parts[j].by
	})
	var out []string
	for _, p := range parts {
		pct := 100 * float64(p.n) / float64(calls)
		if h := refusalHints[p.by]; h != "" {
			out = append(out, fmt.Sprintf("%.0f%% refused by the %s: %s", pct, p.by, h))
		} else {
			out = append(out, fmt.Sprintf("%.0f%% refused by %s", pct, p.by))
		}
	}
	return what + ": " + strings.Join(out, "; ")
}

// refusedShare is the share of r's calls refused, for the table.
func (r Result) refusedShare() string {
	n := 0
	for _, c := range r.Refused {
		n += c
	}
	if n == 0 || r.Requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(r.Requests))
}
