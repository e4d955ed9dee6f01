package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/middleware"
	"github.com/keyservice/keyservice/internal/perm"
)

// A matrix row is one RPC: the request it is called with (against alpha's
// resources, made fresh for each cell) over gRPC and REST, and how its
// target relates to the caller's keyspaces.
type target int

const (
	byID          target = iota // a resource of alpha named by id: NOT_FOUND for beta
	namesKeyspace               // names alpha: PERMISSION_DENIED for beta
	listing                     // lists what the caller may see: OK, filtered
	newKeyspace                 // only a credential of every keyspace
)

type cellCall struct {
	req                    proto.Message
	method, path, restBody string
}

type row struct {
	target target
	call   func(t *testing.T, e *env, tn *tenants, n int64) cellCall
}

func rows() map[string]row {
	key := func(t *testing.T, e *env) (string, string) {
		s, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "m", Owner: "o", Keyspace: "alpha"})
		return s, k.GetId()
	}
	return map[string]row{
		"Validate": {listing, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			s, _ := key(t, e)
			return cellCall{&keyservicev1.ValidateRequest{Key: s}, "POST", "/v1/keys:validate", `{"key":"` + s + `"}`}
		}},
		// A stream: its first message (a heartbeat) or its refusal.
		"WatchKeyEvents": {listing, func(*testing.T, *env, *tenants, int64) cellCall {
			return cellCall{&keyservicev1.WatchKeyEventsRequest{}, "GET", "/v1/key-events", ""}
		}},
		"CreateKey": {namesKeyspace, func(*testing.T, *env, *tenants, int64) cellCall {
			return cellCall{&keyservicev1.CreateKeyRequest{Name: "m", Owner: "o", Keyspace: "alpha"}, "POST", "/v1/keys", `{"name":"m","owner":"o","keyspace":"alpha"}`}
		}},
		"GetKey": {byID, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, id := key(t, e)
			return cellCall{&keyservicev1.GetKeyRequest{Id: id}, "GET", "/v1/keys/" + id, ""}
		}},
		"ListKeys": {namesKeyspace, func(*testing.T, *env, *tenants, int64) cellCall {
			return cellCall{&keyservicev1.ListKeysRequest{Keyspace: "alpha"}, "GET", "/v1/keys?keyspace=alpha", ""}
		}},
		"RevokeKey": {byID, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, id := key(t, e)
			return cellCall{&keyservicev1.RevokeKeyRequest{Id: id}, "POST", "/v1/keys/" + id + ":revoke", `{}`}
		}},
		"UpdateKey": {byID, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, id := key(t, e)
			return cellCall{&keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, Name: "n2"}, UpdateMask: mask("name")},
				"PATCH", "/v1/keys/" + id + "?update_mask=name", `{"name":"n2"}`}
		}},
		"RotateKey": {byID, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, id := key(t, e)
			return cellCall{&keyservicev1.RotateKeyRequest{Id: id}, "POST", "/v1/keys/" + id + ":rotate", `{}`}
		}},
		"ListAuditEvents": {listing, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, id := key(t, e)
			return cellCall{&keyservicev1.ListAuditEventsRequest{KeyId: id}, "GET", "/v1/audit-events?key_id=" + id, ""}
		}},
		"CreateKeyspace": {newKeyspace, func(_ *testing.T, _ *env, _ *tenants, n int64) cellCall {
			name, prefix := fmt.Sprintf("m%d", n), fmt.Sprintf("m%d", n)
			return cellCall{&keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Name: name, Prefix: prefix}},
				"POST", "/v1/keyspaces", `{"keyspace":{"name":"` + name + `","prefix":"` + prefix + `"}}`}
		}},
		"GetKeyspace": {byID, func(_ *testing.T, _ *env, tn *tenants, _ int64) cellCall {
			return cellCall{&keyservicev1.GetKeyspaceRequest{Id: tn.alpha.GetId()}, "GET", "/v1/keyspaces/" + tn.alpha.GetId(), ""}
		}},
		"ListKeyspaces": {listing, func(*testing.T, *env, *tenants, int64) cellCall {
			return cellCall{&keyservicev1.ListKeyspacesRequest{}, "GET", "/v1/keyspaces", ""}
		}},
		"UpdateKeyspace": {byID, func(_ *testing.T, _ *env, tn *tenants, _ int64) cellCall {
			id := tn.alpha.GetId()
			return cellCall{&keyservicev1.UpdateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{Id: id, DefaultScopes: []string{"s"}}, UpdateMask: mask("default_scopes")},
				"PATCH", "/v1/keyspaces/" + id + "?update_mask=default_scopes", `{"default_scopes":["s"]}`}
		}},
		"CreateCredential": {namesKeyspace, func(_ *testing.T, _ *env, _ *tenants, n int64) cellCall {
			name := fmt.Sprintf("m%d", n)
			return cellCall{&keyservicev1.CreateCredentialRequest{Name: name, Permissions: []string{"keys.validate"}, Keyspaces: []string{"alpha"}},
				"POST", "/v1/credentials", `{"name":"` + name + `","permissions":["keys.validate"],"keyspaces":["alpha"]}`}
		}},
		"ListCredentials": {listing, func(*testing.T, *env, *tenants, int64) cellCall {
			return cellCall{&keyservicev1.ListCredentialsRequest{}, "GET", "/v1/credentials", ""}
		}},
		"AddCredits": {byID, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, k := createKey(t, e, &keyservicev1.CreateKeyRequest{Name: "m", Owner: "o", Keyspace: "alpha", Credits: &keyservicev1.Credits{Remaining: 5}})
			id := k.GetId()
			return cellCall{&keyservicev1.AddCreditsRequest{KeyId: id, Amount: 1}, "POST", "/v1/keys/" + id + ":addCredits", `{"amount":"1"}`}
		}},
		"ReportUsage": {byID, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, id := key(t, e)
			rid := uuid.NewString()
			return cellCall{&keyservicev1.ReportUsageRequest{KeyId: id, Cost: 1, RequestId: rid}, "POST", "/v1/usage:report",
				`{"key_id":"` + id + `","cost":"1","request_id":"` + rid + `"}`}
		}},
		"GetUsage": {byID, func(t *testing.T, e *env, _ *tenants, _ int64) cellCall {
			_, id := key(t, e)
			return cellCall{&keyservicev1.GetUsageRequest{KeyId: id}, "GET", "/v1/usage?key_id=" + id, ""}
		}},
		"CreateOwner": {namesKeyspace, func(_ *testing.T, _ *env, _ *tenants, n int64) cellCall {
			name := fmt.Sprintf("own%d", n)
			return cellCall{&keyservicev1.CreateOwnerRequest{Owner: &keyservicev1.Owner{KeyspaceId: "alpha", Name: name, Credits: &keyservicev1.Credits{Remaining: 1}}},
				"POST", "/v1/owners", `{"owner":{"keyspace_id":"alpha","name":"` + name + `","credits":{"remaining":"1"}}}`}
		}},
		"GetOwner": {byID, func(t *testing.T, e *env, _ *tenants, n int64) cellCall {
			id := matrixOwner(t, e, n)
			return cellCall{&keyservicev1.GetOwnerRequest{Id: id}, "GET", "/v1/owners/" + id, ""}
		}},
		"ListOwners": {listing, func(*testing.T, *env, *tenants, int64) cellCall {
			return cellCall{&keyservicev1.ListOwnersRequest{}, "GET", "/v1/owners", ""}
		}},
		"UpdateOwner": {byID, func(t *testing.T, e *env, _ *tenants, n int64) cellCall {
			id := matrixOwner(t, e, n)
			return cellCall{&keyservicev1.UpdateOwnerRequest{Owner: &keyservicev1.Owner{Id: id, Credits: &keyservicev1.Credits{Remaining: 9}}, UpdateMask: mask("credits")},
				"PATCH", "/v1/owners/" + id + "?update_mask=credits", `{"credits":{"remaining":"9"}}`}
		}},
		"RevokeCredential": {byID, func(t *testing.T, e *env, _ *tenants, n int64) cellCall {
			r, err := e.grpc.CreateCredential(admin(context.Background()), &keyservicev1.CreateCredentialRequest{
				Name: fmt.Sprintf("victim%d", n), Permissions: []string{"keys.validate"}, Keyspaces: []string{"alpha"}})
			if err != nil {
				t.Fatal(err)
			}
			id := r.GetCredential().GetId()
			return cellCall{&keyservicev1.RevokeCredentialRequest{Id: id}, "POST", "/v1/credentials/" + id + ":revoke", `{}`}
		}},
	}
}

// matrixOwner creates an owner in alpha (as the bootstrap admin).
func matrixOwner(t *testing.T, e *env, n int64) string {
	t.Helper()
	o, err := e.grpc.CreateOwner(admin(context.Background()), &keyservicev1.CreateOwnerRequest{Owner: &keyservicev1.Owner{
		KeyspaceId: "alpha", Name: fmt.Sprintf("mo%d", n), RateLimit: &keyservicev1.RateLimit{Limit: 5, Period: durationpb.New(time.Second)}}})
	if err != nil {
		t.Fatal(err)
	}
	return o.GetOwner().GetId()
}

// callerKind is a column of the matrix.
type callerKind struct {
	name   string
	secret func(*tenants) string
	perms  perm.Set
	alpha  bool // may act on alpha
	all    bool // of every keyspace
	usable bool
}

func columns() []callerKind {
	reader := perm.Of(perm.KeysRead, perm.AuditRead, perm.KeyspacesRead, perm.CredentialsRead)
	return []callerKind{
		{"credential of alpha", func(tn *tenants) string { return tn.credA }, perm.All, true, false, true},
		{"credential of beta", func(tn *tenants) string { return tn.credB }, perm.All, false, false, true},
		{"read-only", func(tn *tenants) string { return tn.reader }, reader, true, true, true},
		{"expired", func(tn *tenants) string { return tn.expired }, perm.All, true, true, false},
		{"revoked", func(tn *tenants) string { return tn.revoked }, perm.All, true, true, false},
		{"bootstrap", func(*tenants) string { return adminToken }, perm.All, true, true, true},
	}
}

// want is the code of a cell, read from the permission table.
func want(method string, r row, c callerKind) codes.Code {
	switch {
	case !c.usable:
		return codes.Unauthenticated
	case !c.perms.Has(middleware.Permissions["/"+keyservicev1.KeyService_ServiceDesc.ServiceName+"/"+method]):
		return codes.PermissionDenied
	case r.target == newKeyspace && !c.all:
		return codes.PermissionDenied
	case c.alpha || r.target == listing:
		return codes.OK
	case r.target == byID:
		return codes.NotFound
	}
	return codes.PermissionDenied
}

// TestPermissionMatrix calls every RPC of KeyService (from its service
// descriptor: a new RPC without a row fails here) with every kind of
// credential, over gRPC and REST, and checks each cell's code against the
// permission table and the keyspace rules. Beta's answers that succeed
// show nothing of alpha.
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	e := start(t)
	tn := newTenants(t, e)
	rs := rows()
	var n atomic.Int64
	sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(keyservicev1.KeyService_ServiceDesc.ServiceName))
	if err != nil {
		t.Fatal(err)
	}
	methods := sd.(protoreflect.ServiceDescriptor).Methods()
	cells := 0
	for i := range methods.Len() {
		md := methods.Get(i)
		method := string(md.Name())
		r, ok := rs[method]
		if !ok {
			t.Errorf("%s has no row in the matrix: add one to rows()", method)
			continue
		}
		out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		if err != nil {
			t.Fatal(err)
		}
		full := "/" + keyservicev1.KeyService_ServiceDesc.ServiceName + "/" + method
		for _, c := range columns() {
			w := want(method, r, c)
			// gRPC.
			cc := r.call(t, e, tn, n.Add(1))
			resp := out.New().Interface()
			var err error
			if md.IsStreamingServer() {
				err = firstOfStream(bearer(context.Background(), c.secret(tn)), e, full, cc.req, resp)
			} else {
				err = e.conn.Invoke(bearer(context.Background(), c.secret(tn)), full, cc.req, resp)
			}
			if got := status.Code(err); got != w {
				t.Errorf("gRPC %s by %s: %v, want %v", method, c.name, err, w)
			} else if got == codes.OK && !c.alpha {
				leaks(t, method, c.name, resp, tn)
			}
			// REST.
			cc = r.call(t, e, tn, n.Add(1))
			var code int
			var body any
			if md.IsStreamingServer() {
				code = e.restStreamStatus(t, cc.path, c.secret(tn))
			} else {
				code, body, _ = e.rest(t, cc.method, cc.path, c.secret(tn), cc.restBody)
			}
			if wantHTTP := runtime.HTTPStatusFromCode(w); code != wantHTTP {
				t.Errorf("REST %s %s by %s: %d %v, want %d", cc.method, cc.path, c.name, code, body, wantHTTP)
			}
			cells += 2
		}
	}
	if cells < 2*len(columns())*len(middleware.Permissions) {
		t.Errorf("%d cells for %d methods", cells, len(middleware.Permissions))
	}
	t.Logf("%d cells", cells)
}

// leaks fails when an answer to a credential of beta shows alpha.
func leaks(t *testing.T, method, who string, resp proto.Message, tn *tenants) {
	t.Helper()
	switch r := resp.(type) {
	case *keyservicev1.ValidateResponse:
		if r.GetCode() != keyservicev1.Code_CODE_NOT_FOUND || r.GetKey() != nil {
			t.Errorf("%s by %s: alpha's key answered %v", method, who, r.GetCode())
		}
	case *keyservicev1.ListAuditEventsResponse:
		if len(r.GetEvents()) != 0 {
			t.Errorf("%s by %s: %d of alpha's events", method, who, len(r.GetEvents()))
		}
	case *keyservicev1.ListKeyspacesResponse:
		for _, ks := range r.GetKeyspaces() {
			if ks.GetId() != tn.beta.GetId() {
				t.Errorf("%s by %s: sees keyspace %s", method, who, ks.GetName())
			}
		}
	case *keyservicev1.ListCredentialsResponse:
		for _, c := range r.GetCredentials() {
			if c.GetAllKeyspaces() || len(c.GetKeyspaceIds()) != 1 || c.GetKeyspaceIds()[0] != tn.beta.GetId() {
				t.Errorf("%s by %s: sees credential %s", method, who, c.GetName())
			}
		}
	}
}

// firstOfStream opens a server stream, sends req and reads the first
// message into resp: nil when it came, else the stream's error.
func firstOfStream(ctx context.Context, e *env, full string, req, resp proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(resp)
}

// restStreamStatus is the HTTP status of a streaming REST route (GET),
// read without waiting for the stream's end.
func (e *env) restStreamStatus(t *testing.T, path, token string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}
