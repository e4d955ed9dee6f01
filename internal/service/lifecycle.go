package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/middleware"
)

const (
	// maxCIDRs bounds a key's allowed addresses.
	maxCIDRs = 64
	// maxGrace bounds a rotation's grace period.
	maxGrace = 30 * 24 * time.Hour
)

// ScanningActor is the actor of revocations made by leak reports.
const ScanningActor = "secret-scanning"

// audited marks ctx with the actor and request id of the call, for the
// audit trail of the writes made with it.
func audited(ctx context.Context) context.Context {
	return apikey.WithAudit(ctx, apikey.Audit{Actor: caller.ActorFrom(ctx), RequestID: middleware.RequestIDFrom(ctx),
		Owner: apikey.OwnerOf(apikey.CredentialOf(ctx))})
}

// endClient is the address a key's allowed addresses are checked against:
// client_ip when the caller may name end clients (as the failed-attempt
// guard believes it), else the caller's own address. An anonymous end
// client behind a trusted proxy has none (fail closed).
func (s *Service) endClient(ctx context.Context, req *keyservicev1.ValidateRequest) (netip.Addr, bool) {
	id, _ := caller.IdentityFrom(ctx)
	if raw := req.GetClientIp(); raw != "" && caller.MayForward(id, s.trusted) {
		a, err := netip.ParseAddr(raw)
		return a.Unmap(), err == nil
	}
	if gw, peerIsEnd := caller.GatewayCall(ctx); gw && !peerIsEnd {
		// Forward-auth and Envoy ask for the end client they forward for:
		// one they do not name believably is unknown, never the gateway.
		return netip.Addr{}, false
	}
	if id.Anonymous || caller.EndClientUnknown(ctx) {
		// Behind a trusted proxy that named no usable end client, the
		// address at hand is the proxy's: no address, fail closed.
		return netip.Addr{}, false
	}
	a := caller.ClientAddr(ctx).Unmap()
	return a, a.IsValid()
}

// checkCIDRs parses allowed addresses: IPv4 or IPv6 prefixes without host
// bits, at most maxCIDRs, duplicates dropped, in the order given.
func checkCIDRs(field string, in []string) ([]netip.Prefix, error) {
	if len(in) > maxCIDRs {
		return nil, invalid(field, "at most %d CIDRs, got %d", maxCIDRs, len(in))
	}
	var out []netip.Prefix
	for i, c := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		switch {
		case err != nil:
			// netip.ParsePrefix refuses zones, and ParseAddr reads all
			// after "%" as one ("fe80::%eth0/64" is an address in zone
			// "eth0/64"): a zone is told apart before an address is.
			a, aerr := netip.ParseAddr(strings.TrimSpace(c))
			switch {
			case aerr == nil && a.Zone() != "":
				return nil, invalid(f, "%q has a zone; zones are not allowed", c)
			case aerr == nil:
				return nil, invalid(f, "%q is an address, not a CIDR: write it as %s/32 (IPv4) or /128 (IPv6)", c, strings.TrimSpace(c))
			}
			return nil, invalid(f, "%q is not an IPv4 or IPv6 CIDR such as 203.0.113.0/24 or 2001:db8::/32", c)
		case p != p.Masked():
			return nil, invalid(f, "%q has host bits set; did you mean %s?", c, p.Masked())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			if p.Bits() < 0 {
				return nil, invalid(f, "%q is an IPv4-mapped prefix shorter than ::ffff:0:0/96", c)
			}
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *Service) UpdateKey(ctx context.Context, req *keyservicev1.UpdateKeyRequest) (*keyservicev1.UpdateKeyResponse, error) {
	k := req.GetKey()
	if k == nil {
		return nil, invalid("key", "is required: the key's new fields, with key.id")
	}
	id, err := parseIDField("key.id", k.GetId())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, invalid("update_mask", "is required: name the fields to change among %s", strings.Join(apikey.UpdatableFields, ", "))
	}
	u := apikey.Update{}
	for _, p := range paths {
		field := snakeCase(p)
		// Over REST without ?update_mask, the mask is the body's fields,
		// and a message field is named by its parts: rate_limit.limit.
		if strings.HasPrefix(field, "credits.") {
			field = apikey.FieldCredits // the whole credits setting is replaced
		}
		if sub, ok := strings.CutPrefix(field, "rate_limit."); ok && (sub == "limit" || sub == "period" || sub == "burst") {
			// A part names the whole limit, which is replaced: without one
			// in key, it would silently fall back to the default.
			if k.GetRateLimit() == nil {
				return nil, invalid("update_mask", "%q needs key.rate_limit (the whole rate_limit is replaced)", p)
			}
			field = apikey.FieldRateLimit
		}
		if !slices.Contains(apikey.UpdatableFields, field) {
			return nil, invalid("update_mask", "%q cannot be updated; updatable fields are %s", p, strings.Join(apikey.UpdatableFields, ", "))
		}
		if slices.Contains(u.Fields, field) {
			continue
		}
		u.Fields = append(u.Fields, field)
		switch field {
		case apikey.FieldName:
			if err := checkText("key.name", k.GetName(), maxNameLen); err != nil {
				return nil, err
			}
			u.Name = k.GetName()
		case apikey.FieldScopes:
			if err := checkScopes("key.scopes", k.GetScopes()); err != nil {
				return nil, err
			}
			u.Scopes = k.GetScopes()
		case apikey.FieldMetadata:
			if err := checkMetadata("key.metadata", k.GetMetadata()); err != nil {
				return nil, err
			}
			u.Metadata = k.GetMetadata()
		case apikey.FieldExpiresAt:
			if u.ExpiresAt, err = checkExpiry(k.GetExpiresAt(), s.now(), true); err != nil {
				return nil, err
			}
		case apikey.FieldRateLimit:
			if u.RateLimit, err = checkRateLimit(k.GetRateLimit()); err != nil {
				return nil, err
			}
		case apikey.FieldEnabled:
			u.Enabled = k.GetEnabled()
		case apikey.FieldAllowedCIDRs:
			if u.AllowedCIDRs, err = checkCIDRs("key.allowed_cidrs", k.GetAllowedCidrs()); err != nil {
				return nil, err
			}
		case apikey.FieldCredits:
			if u.Credits, err = checkCredits("key.credits", k.GetCredits()); err != nil {
				return nil, err
			}
		}
	}
	if err := s.visibleKey(ctx, id); err != nil {
		return nil, err
	}
	answer := func(recs ...apikey.Key) proto.Message {
		return &keyservicev1.UpdateKeyResponse{Key: keyToProto(&recs[0])}
	}
	if ctx, err = s.withRequest(ctx, "UpdateKey", req, answer); err != nil {
		return nil, err
	}
	rec, _, err := s.keys.UpdateKey(audited(ctx), id, u)
	if err != nil {
		return replay(s, ctx, "UpdateKey", req, err, &keyservicev1.UpdateKeyResponse{})
	}
	out := answer(rec).(*keyservicev1.UpdateKeyResponse)
	if err := s.withCredits(ctx, []*keyservicev1.Key{out.Key}, []apikey.Key{rec}); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) RotateKey(ctx context.Context, req *keyservicev1.RotateKeyRequest) (*keyservicev1.RotateKeyResponse, error) {
	id, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	var grace time.Duration
	if gp := req.GetGracePeriod(); gp != nil {
		if err := gp.CheckValid(); err != nil {
			return nil, invalid("grace_period", "is not a valid duration")
		}
		grace = gp.AsDuration()
		if grace < 0 || grace > maxGrace {
			return nil, invalid("grace_period", "must be between 0s and 30 days (2592000s), got %s", grace)
		}
	}
	if f := req.GetFormat(); f != keyservicev1.Format_FORMAT_UNSPECIFIED && f != keyservicev1.Format_FORMAT_CHECKSUM && f != keyservicev1.Format_FORMAT_SIGNED {
		return nil, invalid("format", "must be FORMAT_CHECKSUM or FORMAT_SIGNED, got %d", f)
	}
	// The new key is of the old one's keyspace: its prefix makes the secret.
	old, err := s.keys.GetKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if c := apikey.CredentialOf(ctx); c != nil && !c.InKeyspace(old.KeyspaceID) {
		return nil, apikey.ErrNotFound
	}
	ks, ok := s.tenancy.Current().KeyspaceByID(cmp.Or(old.KeyspaceID, apikey.DefaultKeyspaceID))
	if !ok {
		return nil, fmt.Errorf("key %s is of keyspace %s, which this replica does not know", id, old.KeyspaceID)
	}
	g, err := s.generate(ks, req.GetFormat())
	if err != nil {
		return nil, err
	}
	answer := func(recs ...apikey.Key) proto.Message {
		return &keyservicev1.RotateKeyResponse{Secret: g.Secret, Key: keyToProto(&recs[0]), OldKey: keyToProto(&recs[1])}
	}
	if ctx, err = s.withRequest(ctx, "RotateKey", req, answer); err != nil {
		return nil, err
	}
	nk, old, err := s.keys.RotateKey(audited(ctx), id, apikey.Rotation{NewKey: apikey.NewKey{Hash: g.Hash, Hint: g.Hint}, Grace: grace})
	if err != nil {
		return replay(s, ctx, "RotateKey", req, err, &keyservicev1.RotateKeyResponse{})
	}
	return answer(nk, old).(*keyservicev1.RotateKeyResponse), nil
}

func (s *Service) ListAuditEvents(ctx context.Context, req *keyservicev1.ListAuditEventsRequest) (*keyservicev1.ListAuditEventsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	q := apikey.AuditQuery{Actor: req.GetActor(), Limit: size}
	if raw := req.GetKeyId(); raw != "" {
		id, err := parseIDField("key_id", raw)
		if err != nil {
			return nil, err
		}
		q.KeyID = id
	}
	if err := checkOptionalText("actor", q.Actor, maxOwnerLen); err != nil {
		return nil, err
	}
	page := apikey.Page{List: apikey.ListAuditEvents, Filters: []string{"", q.Actor}}
	if q.KeyID != uuid.Nil {
		page.Filters[0] = q.KeyID.String() // canonical: any spelling of the id is the same filter
	}
	if q.After, err = s.pageToken(page, req.GetPageToken()); err != nil {
		return nil, err
	}
	// A credential bound to keyspaces reads only their events (credentials'
	// own events have no keyspace: only a credential of every keyspace
	// reads them).
	if c := bound(ctx); c != nil {
		q.Keyspaces = c.Keyspaces
	}
	evs, next, err := s.keys.ListAuditEvents(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &keyservicev1.ListAuditEventsResponse{Events: make([]*keyservicev1.AuditEvent, 0, len(evs)), NextPageToken: s.cursors.Encode(page, next)}
	for _, e := range evs {
		pe := &keyservicev1.AuditEvent{
			Id: e.ID.String(), Time: timestamppb.New(e.At), Actor: e.Actor, Action: e.Action,
			RequestId: e.RequestID, ResourceType: e.ResourceType, ResourceId: idString(e.ResourceID),
			KeyId: idString(e.KeyID), KeyspaceId: idString(e.KeyspaceID),
		}
		for _, c := range e.Changes {
			ov, err := structpb.NewValue(c.Old)
			if err != nil {
				return nil, fmt.Errorf("audit event %s: %w", e.ID, err)
			}
			nv, err := structpb.NewValue(c.New)
			if err != nil {
				return nil, fmt.Errorf("audit event %s: %w", e.ID, err)
			}
			pe.Changes = append(pe.Changes, &keyservicev1.FieldChange{Field: c.Field, OldValue: ov, NewValue: nv})
		}
		out.Events = append(out.Events, pe)
	}
	return out, nil
}

// idString is id's text, "" for uuid.Nil.
func idString(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// preconditionOf explains a write refused because of the key's state
// (apikey.ErrRevoked, ErrRotated, ErrExpired).
func preconditionOf(err error) string {
	switch {
	case errors.Is(err, apikey.ErrRevoked):
		return "the key is revoked: a revoked key cannot be updated or rotated"
	case errors.Is(err, apikey.ErrRotated):
		return "the key was already rotated: rotate its successor (rotated_to) instead"
	case errors.Is(err, apikey.ErrExpiredStays):
		return "the key has expired, and an expired key stays expired: its expires_at cannot change; reissue or rotate instead (create a new key, or rotate its successor)"
	case errors.Is(err, apikey.ErrRotatedExpiry):
		return "the key was rotated: its expires_at may only move earlier (not later, not cleared); to keep it, rotate its successor instead"
	}
	return "the key has expired: create a new key instead (a successor would copy the expiry)"
}

// snakeCase turns a lowerCamelCase mask path (expiresAt: the JSON form,
// which some clients send) into the proto name (expires_at).
func snakeCase(p string) string {
	if strings.IndexFunc(p, unicode.IsUpper) < 0 {
		return p
	}
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
