package service

import (
	"cmp"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
)

func keyToProto(k *apikey.Key) *keyservicev1.Key {
	out := &keyservicev1.Key{
		Id:        k.ID.String(),
		Hint:      k.Hint,
		Name:      k.Name,
		Owner:     k.Owner,
		Scopes:    k.Scopes,
		Metadata:  k.Metadata,
		CreatedAt: timestamppb.New(k.CreatedAt),
		Enabled:   k.Enabled,
		// Records from before keyspaces are the default keyspace's.
		KeyspaceId: cmp.Or(k.KeyspaceID, apikey.DefaultKeyspaceID).String(),
	}
	if len(k.AllowedCIDRs) > 0 {
		out.AllowedCidrs = make([]string, len(k.AllowedCIDRs))
		for i, p := range k.AllowedCIDRs {
			out.AllowedCidrs[i] = p.String()
		}
	}
	if k.RotatedFrom != uuid.Nil {
		out.RotatedFrom = k.RotatedFrom.String()
	}
	if k.RotatedTo != uuid.Nil {
		out.RotatedTo = k.RotatedTo.String()
	}
	if k.UpdatedAt != nil {
		out.UpdatedAt = timestamppb.New(*k.UpdatedAt)
	}
	if k.ExpiresAt != nil {
		out.ExpiresAt = timestamppb.New(*k.ExpiresAt)
	}
	if k.RevokedAt != nil {
		out.RevokedAt = timestamppb.New(*k.RevokedAt)
	}
	if k.LastUsedAt != nil {
		out.LastUsedAt = timestamppb.New(*k.LastUsedAt)
	}
	if rl := k.RateLimit; rl != nil {
		out.RateLimit = rateToProto(rl)
	}
	return out
}

func rateToProto(rl *apikey.RateLimit) *keyservicev1.RateLimit {
	return &keyservicev1.RateLimit{Limit: int64(rl.Limit), Period: durationpb.New(rl.Period), Burst: int64(rl.Burst)}
}
