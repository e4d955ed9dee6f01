package service

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/apikey"
)

// Tenants writes keyspaces and credentials (*store.Store). Each write is
// audited and notified in its transaction; the service then reads the
// registry again, so the write is visible on this replica when it returns.
type Tenants interface {
	CreateKeyspace(ctx context.Context, ks apikey.Keyspace) (apikey.Keyspace, error)
	UpdateKeyspace(ctx context.Context, id uuid.UUID, u apikey.KeyspaceUpdate) (apikey.Keyspace, error)
	CreateCredential(ctx context.Context, c apikey.Credential) (apikey.Credential, error)
	RevokeCredential(ctx context.Context, id uuid.UUID, allowed func(apikey.Credential) error) (apikey.Credential, error)
}

const maxKeyspaceName = 63

// checkKeyspaceName: 1 to 63 of a-z, 0-9 and '-', starting with a letter
// (safe in URLs, headers and Envoy's context extensions as it is).
func checkKeyspaceName(field, name string) error {
	ok := name != "" && len(name) <= maxKeyspaceName && name[0] >= 'a' && name[0] <= 'z'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
	}
	if !ok {
		return invalid(field, "must be 1 to %d of a-z, 0-9 and '-', starting with a letter", maxKeyspaceName)
	}
	if _, err := uuid.Parse(name); err == nil {
		return invalid(field, "must not be a UUID (keyspaces are named by id or name)")
	}
	return nil
}

// keyspaceFields checks the changeable fields of in named in fields into out.
func keyspaceFields(in *keyservicev1.Keyspace, fields []string, out *apikey.Keyspace) error {
	for _, f := range fields {
		var err error
		switch f {
		case apikey.KeyspaceFieldName:
			err = checkKeyspaceName("keyspace.name", in.GetName())
			out.Name = in.GetName()
		case apikey.KeyspaceFieldDefaultFormat:
			switch in.GetDefaultFormat() {
			case keyservicev1.Format_FORMAT_UNSPECIFIED:
				out.DefaultFormat = ""
			case keyservicev1.Format_FORMAT_CHECKSUM:
				out.DefaultFormat = "checksum"
			case keyservicev1.Format_FORMAT_SIGNED:
				out.DefaultFormat = "signed"
			default:
				err = invalid("keyspace.default_format", "must be FORMAT_CHECKSUM or FORMAT_SIGNED, got %d", in.GetDefaultFormat())
			}
		case apikey.KeyspaceFieldDefaultRate:
			out.DefaultRate, err = checkRateLimit(in.GetDefaultRateLimit())
		case apikey.KeyspaceFieldDefaultExpiry:
			out.DefaultExpiry = 0
			if d := in.GetDefaultExpiry(); d != nil {
				if d.CheckValid() != nil || d.AsDuration() < time.Second || d.AsDuration() > 100*365*24*time.Hour {
					err = invalid("keyspace.default_expiry", "must be between 1s and 100 years")
				}
				out.DefaultExpiry = d.AsDuration()
			}
		case apikey.KeyspaceFieldDefaultScopes:
			err = checkScopes("keyspace.default_scopes", in.GetDefaultScopes())
			out.DefaultScopes = in.GetDefaultScopes()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) CreateKeyspace(ctx context.Context, req *keyservicev1.CreateKeyspaceRequest) (*keyservicev1.CreateKeyspaceResponse, error) {
	in := req.GetKeyspace()
	if in == nil {
		return nil, invalid("keyspace", "is required")
	}
	if bound(ctx) != nil {
		return nil, deny("only a credential of every keyspace may create keyspaces")
	}
	var ks apikey.Keyspace
	if err := keyspaceFields(in, apikey.KeyspaceFields, &ks); err != nil {
		return nil, err
	}
	if err := s.tenancy.Current().Format.CheckSpacePrefix(in.GetPrefix()); err != nil {
		return nil, invalid("keyspace.prefix", "%v", err)
	}
	ks.Prefix = in.GetPrefix()
	if ks.DefaultFormat == "signed" && !s.tenancy.Current().Format.CanSign() {
		return nil, invalid("keyspace.default_format", "signed keys need signing keys on the server (KEYSERVICE_SIGNING_KEYS)")
	}
	out, err := s.tenants.CreateKeyspace(audited(ctx), ks)
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return &keyservicev1.CreateKeyspaceResponse{Keyspace: keyspaceToProto(&out, s.tenancy.Current().Format.Prefix())}, nil
}

func (s *Service) GetKeyspace(ctx context.Context, req *keyservicev1.GetKeyspaceRequest) (*keyservicev1.GetKeyspaceResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "is required: the keyspace's id or name")
	}
	ks, ok := s.tenancy.Current().Keyspace(req.GetId())
	if c := apikey.CredentialOf(ctx); !ok || (c != nil && !c.InKeyspace(ks.ID)) {
		return nil, &notFound{what: "keyspace"}
	}
	return &keyservicev1.GetKeyspaceResponse{Keyspace: keyspaceToProto(ks, "")}, nil
}

func (s *Service) ListKeyspaces(ctx context.Context, req *keyservicev1.ListKeyspacesRequest) (*keyservicev1.ListKeyspacesResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	page := apikey.Page{List: apikey.ListKeyspaces}
	after, err := s.pageToken(page, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	c := apikey.CredentialOf(ctx)
	out := &keyservicev1.ListKeyspacesResponse{}
	for _, ks := range s.tenancy.Current().Keyspaces() {
		if (c != nil && !c.InKeyspace(ks.ID)) || !after.Before(ks.CreatedAt, ks.ID) {
			continue
		}
		if len(out.Keyspaces) == size {
			last := out.Keyspaces[len(out.Keyspaces)-1]
			out.NextPageToken = s.cursors.Encode(page, apikey.Cursor{CreatedAt: last.CreatedAt.AsTime(), ID: uuid.MustParse(last.Id)})
			break
		}
		out.Keyspaces = append(out.Keyspaces, keyspaceToProto(ks, ""))
	}
	return out, nil
}

func (s *Service) UpdateKeyspace(ctx context.Context, req *keyservicev1.UpdateKeyspaceRequest) (*keyservicev1.UpdateKeyspaceResponse, error) {
	in := req.GetKeyspace()
	if in == nil {
		return nil, invalid("keyspace", "is required: the keyspace's new fields, with keyspace.id")
	}
	id, err := parseIDField("keyspace.id", in.GetId())
	if err != nil {
		return nil, err
	}
	if c := apikey.CredentialOf(ctx); c != nil && !c.InKeyspace(id) {
		return nil, &notFound{what: "keyspace"}
	}
	u := apikey.KeyspaceUpdate{}
	for _, p := range req.GetUpdateMask().GetPaths() {
		f := snakeCase(p)
		if sub, ok := strings.CutPrefix(f, "default_rate_limit."); ok && sub != "" {
			f = apikey.KeyspaceFieldDefaultRate
		}
		if !slices.Contains(apikey.KeyspaceFields, f) {
			return nil, invalid("update_mask", "%q cannot be updated; updatable fields are %s (the prefix never changes: keys carry it)", p, strings.Join(apikey.KeyspaceFields, ", "))
		}
		if !slices.Contains(u.Fields, f) {
			u.Fields = append(u.Fields, f)
		}
	}
	if len(u.Fields) == 0 {
		return nil, invalid("update_mask", "is required: name the fields to change among %s", strings.Join(apikey.KeyspaceFields, ", "))
	}
	if slices.Contains(u.Fields, apikey.KeyspaceFieldName) && bound(ctx) != nil {
		// Gateways name keyspaces: a credential of some keyspaces must not
		// take a name routes give to another.
		return nil, deny("only a credential of every keyspace may rename a keyspace")
	}
	if err := keyspaceFields(in, u.Fields, &u.Keyspace); err != nil {
		return nil, err
	}
	if u.DefaultFormat == "signed" && !s.tenancy.Current().Format.CanSign() {
		return nil, invalid("keyspace.default_format", "signed keys need signing keys on the server (KEYSERVICE_SIGNING_KEYS)")
	}
	out, err := s.tenants.UpdateKeyspace(audited(ctx), id, u)
	if err != nil {
		return nil, notFoundAs(err, "keyspace")
	}
	s.reload(ctx)
	return &keyservicev1.UpdateKeyspaceResponse{Keyspace: keyspaceToProto(&out, s.tenancy.Current().Format.Prefix())}, nil
}

// keyspaceToProto is ks's API form; defaultPrefix names the default
// keyspace's prefix when ks comes from the store (where it is "").
func keyspaceToProto(ks *apikey.Keyspace, defaultPrefix string) *keyservicev1.Keyspace {
	out := &keyservicev1.Keyspace{
		Id: ks.ID.String(), Name: ks.Name, Prefix: ks.Prefix, DefaultFormat: formatOf(ks.DefaultFormat, keyservicev1.Format_FORMAT_UNSPECIFIED),
		DefaultScopes: ks.DefaultScopes, CreatedAt: timestamppb.New(ks.CreatedAt),
	}
	if out.Prefix == "" {
		out.Prefix = defaultPrefix
	}
	if r := ks.DefaultRate; r != nil {
		out.DefaultRateLimit = &keyservicev1.RateLimit{Limit: int64(r.Limit), Period: durationpb.New(r.Period), Burst: int64(r.Burst)}
	}
	if ks.DefaultExpiry > 0 {
		out.DefaultExpiry = durationpb.New(ks.DefaultExpiry)
	}
	if ks.UpdatedAt != nil {
		out.UpdatedAt = timestamppb.New(*ks.UpdatedAt)
	}
	return out
}
