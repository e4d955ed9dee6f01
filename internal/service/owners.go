package service

import (
	"context"
	"slices"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
)

// Owners are held in every replica's memory with the keyspaces
// (tenancy.State): reads come from there, their credits from the store.

func (s *Service) CreateOwner(ctx context.Context, req *keyservicev1.CreateOwnerRequest) (*keyservicev1.CreateOwnerResponse, error) {
	in := req.GetOwner()
	if in == nil {
		return nil, invalid("owner", "is required")
	}
	if err := checkText("owner.name", in.GetName(), maxOwnerLen); err != nil {
		return nil, err
	}
	ks, err := s.keyspaceFor(ctx, "owner.keyspace_id", in.GetKeyspaceId())
	if err != nil {
		return nil, err
	}
	o := apikey.Owner{KeyspaceID: ks.ID, Name: in.GetName()}
	if o.RateLimit, err = checkRateLimit(in.GetRateLimit()); err != nil {
		return nil, err
	}
	credits, err := checkCredits("owner.credits", in.GetCredits())
	if err != nil {
		return nil, err
	}
	if o.RateLimit == nil && credits == nil {
		return nil, invalid("owner", "needs a rate_limit or credits (or both): an owner without budgets changes nothing")
	}
	out, err := s.budgets.CreateOwner(audited(ctx), o, credits)
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	api, err := s.ownerToProto(ctx, &out)
	if err != nil {
		return nil, err
	}
	return &keyservicev1.CreateOwnerResponse{Owner: api}, nil
}

func (s *Service) GetOwner(ctx context.Context, req *keyservicev1.GetOwnerRequest) (*keyservicev1.GetOwnerResponse, error) {
	id, err := parseID(req.GetId())
	if err != nil {
		return nil, err
	}
	o, err := s.visibleOwner(ctx, id)
	if err != nil {
		return nil, err
	}
	api, err := s.ownerToProto(ctx, o)
	if err != nil {
		return nil, err
	}
	return &keyservicev1.GetOwnerResponse{Owner: api}, nil
}

// visibleOwner finds an owner the credential may see (else NOT_FOUND).
func (s *Service) visibleOwner(ctx context.Context, id uuid.UUID) (*apikey.Owner, error) {
	o, ok := s.tenancy.Current().Owner(id)
	if c := apikey.CredentialOf(ctx); !ok || (c != nil && !c.InKeyspace(o.KeyspaceID)) {
		return nil, &notFound{what: "owner"}
	}
	return o, nil
}

func (s *Service) ListOwners(ctx context.Context, req *keyservicev1.ListOwnersRequest) (*keyservicev1.ListOwnersResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	scope, err := s.listScope(ctx, "keyspace", req.GetKeyspace())
	if err != nil {
		return nil, err
	}
	page := apikey.Page{List: apikey.ListOwners, Filters: []string{req.GetKeyspace()}}
	after, err := s.pageToken(page, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var picked []*apikey.Owner
	next := ""
	for _, o := range s.tenancy.Current().Owners() {
		if (scope != nil && !slices.Contains(scope, o.KeyspaceID)) || !after.Before(o.CreatedAt, o.ID) {
			continue
		}
		if len(picked) == size {
			last := picked[len(picked)-1]
			next = s.cursors.Encode(page, apikey.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
			break
		}
		picked = append(picked, o)
	}
	out := &keyservicev1.ListOwnersResponse{Owners: make([]*keyservicev1.Owner, 0, len(picked)), NextPageToken: next}
	credits, err := s.ownerCredits(ctx, picked...)
	if err != nil {
		return nil, err
	}
	for _, o := range picked {
		out.Owners = append(out.Owners, ownerAPI(o, credits))
	}
	return out, nil
}

func (s *Service) UpdateOwner(ctx context.Context, req *keyservicev1.UpdateOwnerRequest) (*keyservicev1.UpdateOwnerResponse, error) {
	in := req.GetOwner()
	if in == nil {
		return nil, invalid("owner", "is required: the owner's new fields, with owner.id")
	}
	id, err := parseIDField("owner.id", in.GetId())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, invalid("update_mask", "is required: name the fields to change among %s", strings.Join(apikey.OwnerUpdatableFields, ", "))
	}
	u := apikey.OwnerUpdate{}
	for _, p := range paths {
		field := snakeCase(p)
		// Over REST without ?update_mask, the mask is the body's fields: a
		// part of a message names the whole of it.
		for _, whole := range apikey.OwnerUpdatableFields {
			if strings.HasPrefix(field, whole+".") {
				field = whole
			}
		}
		if !slices.Contains(apikey.OwnerUpdatableFields, field) {
			return nil, invalid("update_mask", "%q cannot be updated; updatable fields are %s", p, strings.Join(apikey.OwnerUpdatableFields, ", "))
		}
		if slices.Contains(u.Fields, field) {
			continue
		}
		u.Fields = append(u.Fields, field)
		switch field {
		case apikey.OwnerFieldRateLimit:
			if u.RateLimit, err = checkRateLimit(in.GetRateLimit()); err != nil {
				return nil, err
			}
		case apikey.OwnerFieldCredits:
			if u.Credits, err = checkCredits("owner.credits", in.GetCredits()); err != nil {
				return nil, err
			}
		}
	}
	if _, err := s.visibleOwner(ctx, id); err != nil {
		return nil, err
	}
	out, err := s.budgets.UpdateOwner(audited(ctx), id, u)
	if err != nil {
		return nil, notFoundAs(err, "owner")
	}
	s.reload(ctx)
	if o, ok := s.tenancy.Current().Owner(id); ok {
		out.HasCredits = o.HasCredits
	}
	api, err := s.ownerToProto(ctx, &out)
	if err != nil {
		return nil, err
	}
	return &keyservicev1.UpdateOwnerResponse{Owner: api}, nil
}

// ownerCredits reads the credits of the owners that have them.
func (s *Service) ownerCredits(ctx context.Context, os ...*apikey.Owner) (map[uuid.UUID]apikey.Credits, error) {
	var ids []uuid.UUID
	for _, o := range os {
		if o.HasCredits {
			ids = append(ids, o.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.budgets.GetCredits(ctx, ids, s.now())
}

func (s *Service) ownerToProto(ctx context.Context, o *apikey.Owner) (*keyservicev1.Owner, error) {
	// The owner's credits as stored now (a write that set them just
	// committed; the registry may not have read them yet).
	cs, err := s.budgets.GetCredits(ctx, []uuid.UUID{o.ID}, s.now())
	if err != nil {
		return nil, err
	}
	return ownerAPI(o, cs), nil
}

func ownerAPI(o *apikey.Owner, credits map[uuid.UUID]apikey.Credits) *keyservicev1.Owner {
	out := &keyservicev1.Owner{Id: o.ID.String(), KeyspaceId: o.KeyspaceID.String(), Name: o.Name, CreatedAt: timestamppb.New(o.CreatedAt)}
	if rl := o.RateLimit; rl != nil {
		out.RateLimit = rateToProto(rl)
	}
	if c, ok := credits[o.ID]; ok {
		out.Credits = creditsToProto(c)
	}
	if o.UpdatedAt != nil {
		out.UpdatedAt = timestamppb.New(*o.UpdatedAt)
	}
	return out
}
