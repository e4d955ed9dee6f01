package console

import (
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/perm"
)

func (c *console) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /console/keyspaces", c.signedIn(c.keyspacesPage))
	mux.HandleFunc("POST /console/keyspaces", c.signedIn(c.createKeyspace))
	mux.HandleFunc("GET /console/audit", c.signedIn(c.auditPage))
	mux.HandleFunc("GET /console/credentials", c.signedIn(c.credentialsPage))
	mux.HandleFunc("POST /console/credentials", c.signedIn(c.createCredential))
	mux.HandleFunc("GET /console/credentials/{id}/revoke", c.signedIn(c.revokeCredentialPage))
	mux.HandleFunc("POST /console/credentials/{id}/revoke", c.signedIn(c.revokeCredential))
}

func (c *console) keyspacesPage(w http.ResponseWriter, r *http.Request, s session) {
	res, err := c.svc.ListKeyspaces(c.callAs(r, s.token), &keyservicev1.ListKeyspacesRequest{PageSize: 1000})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "keyspaces.html", c.page(s, "Keyspaces", "keyspaces", res.GetKeyspaces()))
}

func (c *console) createKeyspace(w http.ResponseWriter, r *http.Request, s session) {
	f := r.PostForm
	_, err := c.svc.CreateKeyspace(c.callAs(r, s.token), &keyservicev1.CreateKeyspaceRequest{Keyspace: &keyservicev1.Keyspace{
		Name: strings.TrimSpace(f.Get("name")), Prefix: strings.TrimSpace(f.Get("prefix")), DefaultScopes: strings.Fields(f.Get("default_scopes")),
	}})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/keyspaces", http.StatusSeeOther)
}

type auditPage struct {
	Events []*keyservicev1.AuditEvent
	Key    string
	Actor  string
	Next   string
}

func (c *console) auditPage(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	d := auditPage{Key: strings.TrimSpace(q.Get("key")), Actor: strings.TrimSpace(q.Get("actor"))}
	res, err := c.svc.ListAuditEvents(c.callAs(r, s.token), &keyservicev1.ListAuditEventsRequest{
		KeyId: d.Key, Actor: d.Actor, PageToken: q.Get("page"), PageSize: 50,
	})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	d.Events = res.GetEvents()
	if t := res.GetNextPageToken(); t != "" {
		next := url.Values{"page": {t}}
		if d.Key != "" {
			next.Set("key", d.Key)
		}
		if d.Actor != "" {
			next.Set("actor", d.Actor)
		}
		d.Next = "/console/audit?" + next.Encode()
	}
	c.render(w, http.StatusOK, "audit.html", c.page(s, "Audit trail", "audit", d))
}

type credentialsPage struct {
	List        []*keyservicev1.Credential
	Next        string
	Spaces      []*keyservicev1.Keyspace
	Names       map[string]string
	Permissions []string // those the signed-in credential has, which it may grant
	// AllKeyspaces: the signed-in credential has every keyspace, so it may
	// make one that has.
	AllKeyspaces bool
	Created      string // the id of the credential just made
	Secret       string // its secret, once
}

func (c *console) credentialsPage(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	res, err := c.svc.ListCredentials(c.callAs(r, s.token), &keyservicev1.ListCredentialsRequest{PageToken: q.Get("page"), PageSize: 100})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	spaces, names := c.keyspaces(r, s)
	d := credentialsPage{List: res.GetCredentials(), Spaces: spaces, Names: names, Permissions: s.who.Perms.Names(), AllKeyspaces: s.who.AllKeyspaces}
	if id := q.Get("created"); id != "" {
		d.Created, d.Secret = id, c.takeSecret(w, r, s, id)
	}
	if t := res.GetNextPageToken(); t != "" {
		d.Next = "/console/credentials?" + url.Values{"page": {t}}.Encode()
	}
	c.render(w, http.StatusOK, "credentials.html", c.page(s, "Credentials", "credentials", d))
}

// createCredential makes a credential with the permissions and keyspaces
// ticked, and shows its secret once, on the credentials page.
func (c *console) createCredential(w http.ResponseWriter, r *http.Request, s session) {
	f := r.PostForm
	want, err := perm.Parse(f["permission"])
	if err != nil || want == 0 {
		c.errorPage(w, s, http.StatusBadRequest, "Not understood", "Choose at least one permission.")
		return
	}
	req := &keyservicev1.CreateCredentialRequest{Name: strings.TrimSpace(f.Get("name")), Permissions: want.Names()}
	if f.Get("scope") == "all" {
		req.AllKeyspaces = true
	} else {
		req.Keyspaces = f["keyspace"]
	}
	if v := f.Get("expires_at"); v != "" {
		t, err := parseDay(v)
		if err != nil {
			c.errorPage(w, s, http.StatusBadRequest, "Not understood", "Expires: "+err.Error())
			return
		}
		req.ExpiresAt = timestamppb.New(t)
	}
	res, err := c.svc.CreateCredential(c.callAs(r, s.token), req)
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	c.showSecretOnce(w, r, s, res.GetCredential().GetId(), res.GetSecret())
}

// findCredential finds a credential by id in the list the signed-in
// credential may read.
func (c *console) findCredential(r *http.Request, s session, id string) (*keyservicev1.Credential, error) {
	req := &keyservicev1.ListCredentialsRequest{PageSize: 1000}
	for {
		res, err := c.svc.ListCredentials(c.callAs(r, s.token), req)
		if err != nil {
			return nil, err
		}
		for _, cr := range res.GetCredentials() {
			if cr.GetId() == id {
				return cr, nil
			}
		}
		if res.GetNextPageToken() == "" {
			return nil, status.Error(codes.NotFound, "credential not found")
		}
		req.PageToken = res.GetNextPageToken()
	}
}

func (c *console) revokeCredentialPage(w http.ResponseWriter, r *http.Request, s session) {
	cr, err := c.findCredential(r, s, r.PathValue("id"))
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "revokecred.html", c.page(s, "Revoke credential "+cr.GetName(), "credentials", cr))
}

func (c *console) revokeCredential(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if !confirmed(w, r, "/console/credentials/"+url.PathEscape(id)+"/revoke") {
		return
	}
	if _, err := c.svc.RevokeCredential(c.callAs(r, s.token), &keyservicev1.RevokeCredentialRequest{Id: id}); err != nil {
		c.failed(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/credentials", http.StatusSeeOther)
}
