package console

import (
	"crypto/hmac"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

func (c *console) keyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /console/keys", c.signedIn(c.keys))
	mux.HandleFunc("GET /console/keys/new", c.signedIn(c.newKeyPage))
	mux.HandleFunc("POST /console/keys", c.signedIn(c.createKey))
	mux.HandleFunc("GET /console/keys/{id}", c.signedIn(c.keyPage))
	mux.HandleFunc("POST /console/keys/{id}/update", c.signedIn(c.updateKey))
	mux.HandleFunc("POST /console/keys/{id}/enabled", c.signedIn(c.setEnabled))
	mux.HandleFunc("POST /console/keys/{id}/credits", c.signedIn(c.addCredits))
	mux.HandleFunc("POST /console/keys/{id}/rotate", c.signedIn(c.rotateKey))
	mux.HandleFunc("GET /console/keys/{id}/revoke", c.signedIn(c.revokePage))
	mux.HandleFunc("POST /console/keys/{id}/revoke", c.signedIn(c.revokeKey))
}

// keyFilters are the keys page's filters, as the form and the next page's
// address carry them.
var keyFilters = []string{"q", "owner", "keyspace", "state", "order"}

// states are the state filter's choices, in the order the form lists them.
var states = []struct{ Value, Label string }{
	{"", "Any state"}, {"active", "Active"}, {"disabled", "Disabled"}, {"expired", "Expired"}, {"revoked", "Revoked"},
}

type keysPage struct {
	List      []*keyservicev1.Key
	Keyspaces map[string]string // id -> name
	Filter    map[string]string
	States    []struct{ Value, Label string }
	Spaces    []*keyservicev1.Keyspace
	Next      string // the next page's address, "" on the last
	Filtered  bool
}

func (c *console) keys(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	state := keyservicev1.KeyState(keyservicev1.KeyState_value["KEY_STATE_"+strings.ToUpper(q.Get("state"))])
	if q.Get("state") == "" {
		state = keyservicev1.KeyState_KEY_STATE_UNSPECIFIED
	}
	ctx := c.callAs(r, s.token)
	res, err := c.svc.ListKeys(ctx, &keyservicev1.ListKeysRequest{
		Owner: strings.TrimSpace(q.Get("owner")), Keyspace: q.Get("keyspace"), Query: strings.TrimSpace(q.Get("q")), State: state,
		NewestFirst: q.Get("order") != "oldest", PageToken: q.Get("page"), PageSize: 50,
	})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	spaces, names := c.keyspaces(r, s)
	d := keysPage{List: res.GetKeys(), Keyspaces: names, Spaces: spaces, Filter: map[string]string{}, States: states}
	next := url.Values{}
	for _, f := range keyFilters {
		if v := q.Get(f); v != "" {
			d.Filter[f] = v
			next.Set(f, v) // a page token is bound to its filters
			d.Filtered = d.Filtered || f != "order"
		}
	}
	if t := res.GetNextPageToken(); t != "" {
		next.Set("page", t)
		d.Next = "/console/keys?" + next.Encode()
	}
	c.render(w, http.StatusOK, "keys.html", c.page(s, "Keys", "keys", d))
}

// keyspaces lists the keyspaces the credential may see (the first 1,000),
// with their names by id; empty when it may not read them.
func (c *console) keyspaces(r *http.Request, s session) ([]*keyservicev1.Keyspace, map[string]string) {
	names := map[string]string{}
	res, err := c.svc.ListKeyspaces(c.callAs(r, s.token), &keyservicev1.ListKeyspacesRequest{PageSize: 1000})
	if err != nil {
		return nil, names
	}
	for _, ks := range res.GetKeyspaces() {
		names[ks.GetId()] = ks.GetName()
	}
	return res.GetKeyspaces(), names
}

type newKeyPage struct {
	Spaces    []*keyservicev1.Keyspace
	Form      url.Values
	RequestID string // names this form's call: a second click makes no second key
}

func (c *console) newKeyPage(w http.ResponseWriter, r *http.Request, s session) {
	spaces, _ := c.keyspaces(r, s)
	c.render(w, http.StatusOK, "newkey.html", c.page(s, "Create a key", "keys", newKeyPage{Spaces: spaces, Form: url.Values{}, RequestID: uuid.NewString()}))
}

// createKey creates the key and sends the browser to its page, which shows
// the secret once (secretCookie): a reload of that page shows it no more,
// and a reload never posts the form again.
func (c *console) createKey(w http.ResponseWriter, r *http.Request, s session) {
	f := r.PostForm
	req := &keyservicev1.CreateKeyRequest{
		Name: strings.TrimSpace(f.Get("name")), Owner: strings.TrimSpace(f.Get("owner")),
		Keyspace: f.Get("keyspace"), Scopes: strings.Fields(f.Get("scopes")),
		AllowedCidrs: strings.Fields(f.Get("allowed_cidrs")), RequestId: requestID(f),
	}
	bad := func(msg string) {
		spaces, _ := c.keyspaces(r, s)
		p := c.page(s, "Create a key", "keys", newKeyPage{Spaces: spaces, Form: f, RequestID: uuid.NewString()})
		p.Error = msg
		c.render(w, http.StatusBadRequest, "newkey.html", p)
	}
	if v := f.Get("expires_at"); v != "" {
		t, err := parseDay(v)
		if err != nil {
			bad("Expires: " + err.Error())
			return
		}
		req.ExpiresAt = timestamppb.New(t)
	}
	if v := strings.TrimSpace(f.Get("credits")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			bad("Credits: a whole number, 0 or more.")
			return
		}
		req.Credits = &keyservicev1.Credits{Remaining: n}
	}
	res, err := c.svc.CreateKey(c.callAs(r, s.token), req)
	if err != nil {
		if st := status.Code(err); st == codes.InvalidArgument || st == codes.FailedPrecondition {
			bad(status.Convert(err).Message())
			return
		}
		c.failed(w, r, s, err)
		return
	}
	c.showSecretOnce(w, r, s, res.GetKey().GetId(), res.GetSecret())
}

// requestID is the form's request id when it is one (a UUID), else none:
// a second submission of the same form is then the same call, answered
// as the first (the same key and secret), not a second key.
func requestID(f url.Values) string {
	if id, err := uuid.Parse(f.Get("request_id")); err == nil {
		return id.String()
	}
	return ""
}

// parseDay reads a date input (YYYY-MM-DD, the end of that day in UTC) or
// an RFC 3339 time.
func parseDay(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.Add(24*time.Hour - time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, errString("a date, YYYY-MM-DD")
}

type errString string

func (e errString) Error() string { return string(e) }

// secretCookie carries a new secret, sealed, from the write that made it
// to the one page that shows it, for a minute at most; that page removes
// it. It is bound to what the secret is for (the key's or credential's
// id), so no other page shows it.
const secretCookie = "keyservice_console_new"

func (c *console) showSecretOnce(w http.ResponseWriter, r *http.Request, s session, id, secret string) {
	path, to := secretPath(r.URL.Path, id)
	// Bound to the session too: another session in this browser (signed
	// out, then in as another credential) never sees it.
	payload := id + "\n" + c.seal.csrfToken(s.cookie) + "\n" + secret
	http.SetCookie(w, &http.Cookie{Name: secretCookie, Value: c.seal.sealFor(purposeSecret, payload, c.now().Add(time.Minute)),
		Path: path, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 60})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// secretPath is the path the secret cookie of id is sent to (only the
// page that shows it: another key's page never sees, nor removes, it) and
// the address of that page.
func secretPath(from, id string) (path, to string) {
	if strings.HasPrefix(from, "/console/credentials") {
		return "/console/credentials", "/console/credentials?created=" + url.QueryEscape(id)
	}
	p := "/console/keys/" + url.PathEscape(id)
	return p, p
}

// takeSecret returns the new secret for id, once: the cookie is removed
// whatever it held.
func (c *console) takeSecret(w http.ResponseWriter, r *http.Request, s session, id string) string {
	ck, err := r.Cookie(secretCookie)
	if err != nil {
		return ""
	}
	path, _ := secretPath(r.URL.Path, id)
	http.SetCookie(w, &http.Cookie{Name: secretCookie, Value: "", Path: path, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	v, err := c.seal.openFor(purposeSecret, ck.Value, c.now())
	if err != nil {
		return ""
	}
	parts := strings.SplitN(v, "\n", 3)
	if len(parts) != 3 || parts[0] != id || !hmac.Equal([]byte(parts[1]), []byte(c.seal.csrfToken(s.cookie))) {
		return ""
	}
	return parts[2]
}

type keyPage struct {
	Key      *keyservicev1.Key
	State    string
	Space    string
	Secret   string // only right after the key was made
	Day      *chart
	Month    *chart
	Credits  *chart
	UsageErr string
	Audit    []*keyservicev1.AuditEvent
	AuditErr string
	Graces   []grace
	// RequestID names the rotate form's call: a second click makes no
	// second key.
	RequestID string
}

type grace struct {
	Value, Label string
}

// graces are the rotate form's choices; the form selects 24 hours: one
// click must not break every caller of the key at once.
var graces = []grace{{"0s", "None: the old key stops at once"}, {"1h", "1 hour"}, {"24h", "24 hours"}, {"168h", "7 days"}, {"720h", "30 days"}}

func (c *console) keyPage(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	ctx := c.callAs(r, s.token)
	secret := c.takeSecret(w, r, s, id) // first: shown even if the key cannot be read
	res, err := c.svc.GetKey(ctx, &keyservicev1.GetKeyRequest{Id: id})
	if err != nil {
		if secret != "" {
			p := c.page(s, "New key", "keys", secret)
			p.Error = "The key was made, but it cannot be shown: " + status.Convert(err).Message()
			c.render(w, http.StatusOK, "secretonly.html", p)
			return
		}
		c.failed(w, r, s, err)
		return
	}
	k := res.GetKey()
	d := keyPage{Key: k, State: stateOf(k, c.now()), Secret: secret, Graces: graces, RequestID: uuid.NewString()}
	if ks, err := c.svc.GetKeyspace(ctx, &keyservicev1.GetKeyspaceRequest{Id: k.GetKeyspaceId()}); err == nil {
		d.Space = ks.GetKeyspace().GetName()
	}
	d.Day, d.Month, d.Credits, d.UsageErr = c.usageCharts(r, s, id)
	if ev, err := c.svc.ListAuditEvents(ctx, &keyservicev1.ListAuditEventsRequest{KeyId: id, PageSize: 20}); err == nil {
		d.Audit = ev.GetEvents()
	} else {
		d.AuditErr = sectionError(err, "audit.read")
	}
	c.render(w, http.StatusOK, "key.html", c.page(s, keyTitle(k), "keys", d))
}

// sectionError says why a part of a page is missing.
func sectionError(err error, permission string) string {
	if status.Code(err) == codes.PermissionDenied {
		return "This credential may not see this (" + permission + ")."
	}
	return "The service could not answer: reload to try again."
}

func keyTitle(k *keyservicev1.Key) string {
	if k.GetName() != "" {
		return "Key " + k.GetName()
	}
	return "Key " + k.GetHint()
}

// stateOf is what the key answers now.
func stateOf(k *keyservicev1.Key, now time.Time) string {
	switch {
	case k.GetRevokedAt() != nil:
		return "revoked"
	case k.GetExpiresAt() != nil && !now.Before(k.GetExpiresAt().AsTime()):
		return "expired"
	case !k.GetEnabled():
		return "disabled"
	}
	return "active"
}

// updateKey changes only the fields the operator changed in the form,
// judged against the values the form was drawn with (orig_*): the form
// shows the expiry as a day, so an unchanged day keeps the exact time, and
// a field another operator changed meanwhile is not written back.
func (c *console) updateKey(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	f := r.PostForm
	if _, ok := f["orig_name"]; !ok {
		c.errorPage(w, s, http.StatusBadRequest, "Not understood", "This form is out of date: reload the page.")
		return
	}
	k := &keyservicev1.Key{Id: id}
	var paths []string
	if v := strings.TrimSpace(f.Get("name")); v != f.Get("orig_name") {
		k.Name, paths = v, append(paths, "name")
	}
	if v := strings.Fields(f.Get("scopes")); !slices.Equal(v, strings.Fields(f.Get("orig_scopes"))) {
		k.Scopes, paths = v, append(paths, "scopes")
	}
	if v := strings.Fields(f.Get("allowed_cidrs")); !slices.Equal(v, strings.Fields(f.Get("orig_allowed_cidrs"))) {
		k.AllowedCidrs, paths = v, append(paths, "allowed_cidrs")
	}
	if v := f.Get("expires_at"); v != f.Get("orig_expires_at") {
		if v != "" {
			t, err := parseDay(v)
			if err != nil {
				c.errorPage(w, s, http.StatusBadRequest, "Not understood", "Expires: "+err.Error())
				return
			}
			k.ExpiresAt = timestamppb.New(t)
		}
		paths = append(paths, "expires_at")
	}
	if len(paths) > 0 {
		if _, err := c.svc.UpdateKey(c.callAs(r, s.token), &keyservicev1.UpdateKeyRequest{Key: k, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}); err != nil {
			c.failed(w, r, s, err)
			return
		}
	}
	http.Redirect(w, r, "/console/keys/"+url.PathEscape(id), http.StatusSeeOther)
}

func (c *console) setEnabled(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	on := r.PostForm.Get("enabled") == "true"
	_, err := c.svc.UpdateKey(c.callAs(r, s.token), &keyservicev1.UpdateKeyRequest{Key: &keyservicev1.Key{Id: id, Enabled: on},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/keys/"+url.PathEscape(id), http.StatusSeeOther)
}

func (c *console) addCredits(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	n, err := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("amount")), 10, 64)
	if err != nil || n == 0 {
		c.errorPage(w, s, http.StatusBadRequest, "Not understood", "Credits to add: a whole number, not 0 (negative takes away).")
		return
	}
	if _, err := c.svc.AddCredits(c.callAs(r, s.token), &keyservicev1.AddCreditsRequest{KeyId: id, Amount: n}); err != nil {
		c.failed(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/keys/"+url.PathEscape(id), http.StatusSeeOther)
}

// rotateKey makes the successor and shows its secret once, on its page.
func (c *console) rotateKey(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	g, err := time.ParseDuration(r.PostForm.Get("grace"))
	if err != nil || g < 0 {
		c.errorPage(w, s, http.StatusBadRequest, "Not understood", "Grace period: choose one of the list.")
		return
	}
	res, err := c.svc.RotateKey(c.callAs(r, s.token), &keyservicev1.RotateKeyRequest{Id: id, GracePeriod: durationpb.New(g), RequestId: requestID(r.PostForm)})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	c.showSecretOnce(w, r, s, res.GetKey().GetId(), res.GetSecret())
}

// revokePage asks to confirm, naming the key.
func (c *console) revokePage(w http.ResponseWriter, r *http.Request, s session) {
	res, err := c.svc.GetKey(c.callAs(r, s.token), &keyservicev1.GetKeyRequest{Id: r.PathValue("id")})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "revoke.html", c.page(s, "Revoke "+keyTitle(res.GetKey()), "keys", res.GetKey()))
}

func (c *console) revokeKey(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if !confirmed(w, r, "/console/keys/"+url.PathEscape(id)+"/revoke") {
		return
	}
	if _, err := c.svc.RevokeKey(c.callAs(r, s.token), &keyservicev1.RevokeKeyRequest{Id: id}); err != nil {
		c.failed(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/console/keys/"+url.PathEscape(id), http.StatusSeeOther)
}

// confirmed reports whether a revocation's form says it was confirmed;
// when not, the browser is sent to ask, the page that names what it
// revokes.
func confirmed(w http.ResponseWriter, r *http.Request, ask string) bool {
	if r.PostForm.Get("confirm") == "yes" {
		return true
	}
	http.Redirect(w, r, ask, http.StatusSeeOther)
	return false
}
