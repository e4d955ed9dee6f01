package service

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/keyservice/keyservice/internal/apikey"
	"github.com/keyservice/keyservice/internal/validate"
)

// What a credential may see. The auth interceptor checked the method's
// permission; these check its keyspaces. The rule that leaks nothing: a
// key (or keyspace) of a keyspace the credential may not see is NOT_FOUND,
// exactly as one that does not exist; naming such a keyspace in a filter
// or a new key is PERMISSION_DENIED, whether or not it exists.

// bound is the call's credential when it is bound to keyspaces (nil: it
// may see every keyspace, or the call has no credential).
func bound(ctx context.Context) *apikey.Credential {
	if c := apikey.CredentialOf(ctx); c != nil && !c.AllKeyspaces {
		return c
	}
	return nil
}

// visibleKey returns nil when the call may see key id; NOT_FOUND when it
// may not. A credential of every keyspace costs no read.
// keyIn reads the key with id when the credential may see it (else
// ErrNotFound, as for a key that does not exist).
func (s *Service) keyIn(ctx context.Context, id uuid.UUID) (apikey.Key, error) {
	k, err := s.keys.GetKey(ctx, id)
	if err != nil {
		return apikey.Key{}, err
	}
	if c := apikey.CredentialOf(ctx); c != nil && !c.InKeyspace(k.KeyspaceID) {
		return apikey.Key{}, apikey.ErrNotFound
	}
	return k, nil
}

func (s *Service) visibleKey(ctx context.Context, id uuid.UUID) error {
	c := bound(ctx)
	if c == nil {
		return nil
	}
	k, err := s.keys.GetKey(ctx, id)
	if err != nil {
		return err
	}
	if !c.InKeyspace(k.KeyspaceID) {
		return apikey.ErrNotFound
	}
	return nil
}

// keyspaceFor resolves the keyspace a request names in field (its name or
// id; "" is the default keyspace) for the call's credential.
func (s *Service) keyspaceFor(ctx context.Context, field, ref string) (*apikey.Keyspace, error) {
	st := s.tenancy.Current()
	if ref == "" {
		ref = apikey.DefaultKeyspaceID.String()
	}
	ks, ok := st.Keyspace(ref)
	c := apikey.CredentialOf(ctx)
	switch {
	case c != nil && !c.AllKeyspaces && (!ok || !c.InKeyspace(ks.ID)):
		return nil, deny("%s: this credential may not act on that keyspace", field)
	case !ok:
		return nil, &notFound{what: "keyspace"}
	}
	return ks, nil
}

// listScope is the keyspaces a list may show: nil for every one, else
// the credential's (narrowed to the one named in ref, if any).
func (s *Service) listScope(ctx context.Context, field, ref string) ([]uuid.UUID, error) {
	if ref != "" {
		ks, err := s.keyspaceFor(ctx, field, ref)
		if err != nil {
			return nil, err
		}
		return []uuid.UUID{ks.ID}, nil
	}
	if c := bound(ctx); c != nil {
		return c.Keyspaces, nil
	}
	return nil, nil
}

// validateScope is the keyspaces a Validate may find its key in.
func (s *Service) validateScope(ctx context.Context, ref string) (validate.Scope, error) {
	if ref == "" {
		if c := bound(ctx); c != nil {
			return validate.Scope{Restricted: true, IDs: c.Keyspaces}, nil
		}
		return validate.Scope{}, nil
	}
	ids, err := s.listScope(ctx, "keyspace", ref)
	if err != nil {
		return validate.Scope{}, err
	}
	return validate.Scope{Restricted: true, IDs: ids}, nil
}

// notFoundAs turns the store's ErrNotFound into NOT_FOUND naming what.
func notFoundAs(err error, what string) error {
	if errors.Is(err, apikey.ErrNotFound) {
		return &notFound{what: what}
	}
	return err
}
