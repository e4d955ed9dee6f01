package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/outcome"
	"github.com/keyservice/keyservice/internal/validate"
)

// Budgets is what the service writes and reads of credits and owners
// (*store.Store implements it).
type Budgets interface {
	CreateOwner(ctx context.Context, o apikey.Owner, credits *apikey.CreditsSetting) (apikey.Owner, error)
	UpdateOwner(ctx context.Context, id uuid.UUID, u apikey.OwnerUpdate) (apikey.Owner, error)
	GetCredits(ctx context.Context, subjects []uuid.UUID, now time.Time) (map[uuid.UUID]apikey.Credits, error)
	AddCredits(ctx context.Context, subject uuid.UUID, amount int64, caller string, requestID uuid.UUID, bodyHash []byte, now time.Time) (apikey.Credits, bool, error)
	ChargeCredits(ctx context.Context, subjects []uuid.UUID, cost int64, caller string, requestID uuid.UUID, bodyHash []byte, now time.Time) (map[uuid.UUID]apikey.Credits, bool, error)
}

// Recorder counts usage for the history (*usage.Recorder): never a
// statement per call.
type Recorder interface {
	Record(k *apikey.Key, code outcome.Code, credits int64, now time.Time)
	RecordReport(k *apikey.Key, credits int64, now time.Time)
}

var refillIntervals = map[keyservicev1.RefillInterval]apikey.RefillInterval{
	keyservicev1.RefillInterval_REFILL_INTERVAL_DAILY:   apikey.RefillDaily,
	keyservicev1.RefillInterval_REFILL_INTERVAL_MONTHLY: apikey.RefillMonthly,
	keyservicev1.RefillInterval_REFILL_INTERVAL_EVERY:   apikey.RefillEvery,
}

// checkCredits reads a credits setting of a request (nil: none).
func checkCredits(field string, c *keyservicev1.Credits) (*apikey.CreditsSetting, error) {
	if c == nil {
		return nil, nil
	}
	set := &apikey.CreditsSetting{Remaining: c.GetRemaining()}
	if r := c.GetRefill(); r != nil {
		iv, ok := refillIntervals[r.GetInterval()]
		if !ok {
			return nil, invalid(field+".refill.interval", "must be REFILL_INTERVAL_DAILY, REFILL_INTERVAL_MONTHLY or REFILL_INTERVAL_EVERY")
		}
		set.Refill = &apikey.Refill{Amount: r.GetAmount(), Interval: iv, Day: int(r.GetDayOfMonth())}
		if r.GetEvery() != nil {
			if err := r.GetEvery().CheckValid(); err != nil {
				return nil, invalid(field+".refill.every", "is not a valid duration")
			}
			set.Refill.Every = r.GetEvery().AsDuration()
		}
		if err := set.Refill.Valid(); err != nil {
			return nil, invalid(field+".refill", "%v", err)
		}
	}
	if err := set.Valid(); err != nil {
		return nil, invalid(field, "%v", err)
	}
	return set, nil
}

// creditsToProto is the API form of stored credits.
func creditsToProto(c apikey.Credits) *keyservicev1.Credits {
	out := &keyservicev1.Credits{Remaining: c.Remaining}
	if r := c.Refill; r != nil {
		out.Refill = &keyservicev1.Refill{Amount: r.Amount, DayOfMonth: int32(r.Day)}
		for api, iv := range refillIntervals {
			if iv == r.Interval {
				out.Refill.Interval = api
			}
		}
		if r.Every > 0 {
			out.Refill.Every = durationpb.New(r.Every)
		}
	}
	if c.NextRefillAt != nil {
		out.NextRefillAt = timestamppb.New(*c.NextRefillAt)
	}
	return out
}

// settingToProto is a setting just stored at now, as GetKey would show it.
func settingToProto(c *apikey.CreditsSetting, now time.Time) *keyservicev1.Credits {
	st := apikey.Credits{Remaining: c.Remaining, Refill: c.Refill, PeriodStart: now}
	if c.Refill != nil {
		n := c.Refill.Next(now, now)
		st.NextRefillAt = &n
	}
	return creditsToProto(st)
}

func creditStatusToProto(c apikey.CreditStatus) *keyservicev1.CreditsStatus {
	out := &keyservicev1.CreditsStatus{Remaining: c.Remaining}
	if !c.NextRefillAt.IsZero() {
		out.NextRefillAt = timestamppb.New(c.NextRefillAt)
	}
	return out
}

func storedStatus(c apikey.Credits) *keyservicev1.CreditsStatus {
	out := &keyservicev1.CreditsStatus{Remaining: c.Remaining}
	if c.NextRefillAt != nil {
		out.NextRefillAt = timestamppb.New(*c.NextRefillAt)
	}
	return out
}

// withCredits fills the credits of keys that have them (one read).
func (s *Service) withCredits(ctx context.Context, ks []*keyservicev1.Key, recs []apikey.Key) error {
	var subjects []uuid.UUID
	for i := range recs {
		if recs[i].Credits {
			subjects = append(subjects, recs[i].Budget())
		}
	}
	if len(subjects) == 0 || s.budgets == nil {
		return nil
	}
	cs, err := s.budgets.GetCredits(ctx, subjects, s.now())
	if err != nil {
		return err
	}
	for i := range recs {
		if c, ok := cs[recs[i].Budget()]; ok && recs[i].Credits {
			ks[i].Credits = creditsToProto(c)
		}
	}
	return nil
}

// requestIDOf reads an optional request_id.
func requestIDOf(v string) (uuid.UUID, error) {
	if v == "" {
		return uuid.Nil, nil
	}
	return parseIDField("request_id", v)
}

// chargeHash tells two requests with one request_id apart.
func chargeHash(parts ...any) []byte {
	h := sha256.New()
	for _, p := range parts {
		switch v := p.(type) {
		case uuid.UUID:
			h.Write(v[:])
		case int64:
			_ = binary.Write(h, binary.BigEndian, v)
		case string:
			_ = binary.Write(h, binary.BigEndian, int64(len(v)))
			h.Write([]byte(v))
		}
	}
	return h.Sum(nil)
}

// callerName is whose request ids a charge's request_id is among.
func callerName(ctx context.Context) string {
	if a := caller.ActorFrom(ctx); a != "" {
		return a
	}
	if id, ok := caller.IdentityFrom(ctx); ok {
		return id.Name
	}
	return ""
}

func (s *Service) AddCredits(ctx context.Context, req *keyservicev1.AddCreditsRequest) (*keyservicev1.AddCreditsResponse, error) {
	if (req.GetKeyId() == "") == (req.GetOwnerId() == "") {
		return nil, invalid("key_id", "exactly one of key_id and owner_id is required")
	}
	if a := req.GetAmount(); a == 0 || a > apikey.MaxCredits || a < -apikey.MaxCredits {
		return nil, invalid("amount", "must be between -%d and %d and not 0, got %d", int64(apikey.MaxCredits), int64(apikey.MaxCredits), a)
	}
	rid, err := requestIDOf(req.GetRequestId())
	if err != nil {
		return nil, err
	}
	subject, err := s.creditSubject(ctx, req.GetKeyId(), req.GetOwnerId())
	if err != nil {
		return nil, err
	}
	c, _, err := s.budgets.AddCredits(ctx, subject, req.GetAmount(), callerName(ctx), rid, chargeHash("add", subject, req.GetAmount()), s.now())
	if err != nil {
		return nil, err
	}
	return &keyservicev1.AddCreditsResponse{Credits: creditsToProto(c)}, nil
}

// creditSubject finds whose credits AddCredits changes: the key's (its
// budget) or the owner's; they must exist, be visible and have credits.
func (s *Service) creditSubject(ctx context.Context, keyID, ownerID string) (uuid.UUID, error) {
	if ownerID != "" {
		id, err := parseIDField("owner_id", ownerID)
		if err != nil {
			return uuid.Nil, err
		}
		o, err := s.visibleOwner(ctx, id)
		if err != nil {
			return uuid.Nil, err
		}
		if !o.HasCredits {
			return uuid.Nil, &noCredits{what: "owner", how: "UpdateOwner (credits)"}
		}
		return o.ID, nil
	}
	id, err := parseIDField("key_id", keyID)
	if err != nil {
		return uuid.Nil, err
	}
	k, err := s.keyIn(ctx, id)
	if err != nil {
		return uuid.Nil, err
	}
	if !k.Credits {
		return uuid.Nil, &noCredits{what: "key", how: "UpdateKey (credits)"}
	}
	return k.Budget(), nil
}

// noCredits: credits were added to a key or owner that has none.
type noCredits struct{ what, how string }

func (e *noCredits) Error() string {
	return "the " + e.what + " has no credits: give it credits with " + e.how + " first"
}

func (s *Service) ReportUsage(ctx context.Context, req *keyservicev1.ReportUsageRequest) (*keyservicev1.ReportUsageResponse, error) {
	if (req.GetKey() == "") == (req.GetKeyId() == "") {
		return nil, invalid("key", "exactly one of key and key_id is required")
	}
	if c := req.GetCost(); c < 1 || c > apikey.MaxCharge {
		return nil, invalid("cost", "must be between 1 and %d, got %d", int64(apikey.MaxCharge), c)
	}
	if req.GetRequestId() == "" {
		return nil, invalid("request_id", "is required: a UUID naming the charge, so that a retry is charged once")
	}
	rid, err := requestIDOf(req.GetRequestId())
	if err != nil {
		return nil, err
	}
	k, err := s.reportedKey(ctx, req)
	if err != nil {
		return nil, err
	}
	var subjects []uuid.UUID
	if k.Credits {
		subjects = append(subjects, k.Budget())
	}
	o := s.tenancy.Current().OwnerOf(k)
	if o != nil && o.HasCredits {
		subjects = append(subjects, o.ID)
	}
	now := s.now()
	cs, dup, err := s.budgets.ChargeCredits(ctx, subjects, req.GetCost(), callerName(ctx), rid, chargeHash("report", k.ID, req.GetCost()), now)
	if err != nil {
		return nil, err
	}
	if !dup && s.usage != nil {
		s.usage.RecordReport(k, req.GetCost(), now)
	}
	out := &keyservicev1.ReportUsageResponse{Duplicate: dup}
	if c, ok := cs[k.Budget()]; ok && k.Credits {
		out.Credits = storedStatus(c)
	}
	if o != nil {
		if c, ok := cs[o.ID]; ok {
			out.OwnerCredits = storedStatus(c)
		}
	}
	return out, nil
}

// reportedKey finds the key a charge is for: by its secret (judged as
// Validate judges it, within the caller's keyspaces: a charge for a key
// that was revoked since is still charged) or by id.
func (s *Service) reportedKey(ctx context.Context, req *keyservicev1.ReportUsageRequest) (*apikey.Key, error) {
	if req.GetKey() != "" {
		scope, err := s.validateScope(ctx, "")
		if err != nil {
			return nil, err
		}
		res, err := s.validator.ValidateIn(ctx, req.GetKey(), scope)
		if err != nil {
			return nil, err
		}
		if res.Key == nil || res.Path == validate.PathKeyspace {
			return nil, &notFound{what: "key"}
		}
		return res.Key, nil
	}
	id, err := parseIDField("key_id", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	k, err := s.keyIn(ctx, id)
	if err != nil {
		return nil, err
	}
	return &k, nil
}
