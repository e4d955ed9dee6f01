package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/keys"
	"github.com/keyservice/keyservice/internal/middleware"
)

// Leak is one token reported as found in public.
type Leak struct {
	Token, Type, URL, Source string
}

// LeakVerdict is the answer for one reported token.
type LeakVerdict struct {
	TruePositive bool   // the token is one of our keys
	Action       string // revoked, flagged, already_revoked; "" for false positives
}

// ReportLeaks handles leaked-key reports (GitHub secret scanning): each
// token is looked up by its hash; one of our keys is revoked (or, with
// flagOnly, only flagged) and the report recorded once per key and URL,
// the two in one transaction. Every token is acted on, whatever happens to
// the others: a token that fails is named in the error (by its position,
// never its value) after the rest are done, and the report as a whole is
// to be retried; reporting the same token again revokes once and answers
// the same. The tokens are never logged.
func (s *Service) ReportLeaks(ctx context.Context, leaks []Leak, flagOnly bool) ([]LeakVerdict, error) {
	out := make([]LeakVerdict, len(leaks))
	var errs []error
	actx := apikey.WithAudit(ctx, apikey.Audit{Actor: ScanningActor, RequestID: middleware.RequestIDFrom(ctx)})
	for i, l := range leaks {
		// A token that is not a well-formed key of ours (a forgery, a
		// scanner's false match) costs no lookup.
		if err := s.tenancy.Current().Format.Parse(l.Token); err != nil {
			continue
		}
		k, err := s.keys.KeyByHash(ctx, keys.HashOf(l.Token))
		if errors.Is(err, apikey.ErrNotFound) {
			continue // a false positive
		}
		if err == nil {
			var action string
			_, action, err = s.keys.ReportLeak(actx, apikey.LeakReport{KeyID: k.ID, URL: l.URL, Source: l.Source, TokenType: l.Type}, !flagOnly)
			if err == nil {
				out[i] = LeakVerdict{TruePositive: true, Action: action}
				continue
			}
		}
		errs = append(errs, fmt.Errorf("token %d of %d: %w", i+1, len(leaks), err))
	}
	return out, errors.Join(errs...)
}
