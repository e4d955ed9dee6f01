// Package console serves the operators' console at /console on the HTTP
// port: pages drawn by the server from embedded templates and one style
// sheet, no script, no network at run time. Every page calls the service
// through the same interceptor chain as REST, with the signed-in
// credential, so the service enforces what the credential may do.
package console

import (
	"context"
	"embed"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
)

//go:embed assets templates
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// cookieName holds the sealed session (session.go).
const cookieName = "keyservice_console"

// sessionFor is how long a sign-in lasts.
const sessionFor = 8 * time.Hour

// Config is what the console needs.
type Config struct {
	// Service is the KeyService through the interceptor chain
	// (middleware.Bind).
	Service keyservicev1.KeyServiceServer
	// Secret seals sessions (the seal key, else an admin token).
	Secret string
	Now    func() time.Time
}

type console struct {
	svc  keyservicev1.KeyServiceServer
	seal *sealer
	now  func() time.Time
}

// New returns the console's handler, to be mounted at /console/.
func New(cfg Config) (http.Handler, error) {
	s, err := newSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	c := &console{svc: cfg.Service, seal: s, now: cfg.Now}
	if c.now == nil {
		c.now = time.Now
	}
	mux := http.NewServeMux()
	mux.Handle("GET /console/assets/", http.StripPrefix("/console/", http.FileServerFS(files)))
	mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/keys", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/sign-in", c.signInPage)
	mux.HandleFunc("POST /console/sign-in", c.signIn)
	mux.HandleFunc("POST /console/sign-out", c.signedIn(c.signOut))
	mux.HandleFunc("GET /console/keys", c.signedIn(c.keys))
	return headers(sameOrigin(mux)), nil
}

// sameOrigin refuses a write that a browser says came from another site
// (Sec-Fetch-Site, else Origin): with sign-in included, no other site can
// sign a visitor in as the other site's credential (login CSRF).
func sameOrigin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			site := r.Header.Get("Sec-Fetch-Site")
			origin := r.Header.Get("Origin")
			if (site != "" && site != "same-origin") ||
				(site == "" && origin != "" && origin != "http://"+r.Host && origin != "https://"+r.Host) {
				http.Error(w, "a console form must come from the console", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// headers sets what every console answer carries: a strict
// Content-Security-Policy (no script at all, styles from the console's
// own sheet), no framing, no caching, no sniffing, no referrer.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title  string
	CSRF   string // empty when signed out
	Error  string
	Data   any
	Signed bool
}

func (c *console) render(w http.ResponseWriter, code int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = pages.ExecuteTemplate(w, name, p)
}

func (c *console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "signin.html", page{Title: "Sign in"})
}

// signIn takes a credential's token from the form (never the URL), and
// proves it with a call the console needs (listing keyspaces) through the
// chain, which refuses a wrong token as it does over REST (a wrong token is
// not yet counted by the failed-attempt guard: issue 26).
func (c *console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if tok == "" {
		c.render(w, http.StatusBadRequest, "signin.html", page{Title: "Sign in", Error: "Enter a credential's token."})
		return
	}
	if _, err := c.svc.ListKeyspaces(c.callAs(r, tok), &keyservicev1.ListKeyspacesRequest{}); err != nil {
		code, msg := http.StatusUnauthorized, "That token is not a credential that may use the console."
		if status.Code(err) == codes.ResourceExhausted {
			code, msg = http.StatusTooManyRequests, "Too many attempts: wait, then try again."
		}
		c.render(w, code, "signin.html", page{Title: "Sign in", Error: msg})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: c.seal.seal(tok, c.now().Add(sessionFor)), Path: "/console/",
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(sessionFor / time.Second)})
	http.Redirect(w, r, "/console/keys", http.StatusSeeOther)
}

// secure reports whether the session cookie must be Secure: always, but
// for plain HTTP to a loopback address (a console opened on the machine
// itself). Behind a proxy that ends TLS the request is plain HTTP to a
// real host name: Secure, so the browser sends it over HTTPS only.
func secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == "localhost" {
		return false
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err != nil || !ip.IsLoopback()
}

// session is a signed-in request's credential token and cookie.
type session struct {
	token, cookie string
}

// signedIn runs h for a request with a valid session; a write must carry
// the session's CSRF token.
func (c *console) signedIn(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieName)
		var tok string
		if err == nil {
			tok, err = c.seal.open(ck.Value, c.now())
		}
		if err != nil {
			c.signOutCookie(w)
			http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !c.seal.csrfOK(ck.Value, r.PostFormValue("csrf")) {
				c.render(w, http.StatusForbidden, "error.html", page{Title: "Refused", Error: "This form is out of date or did not come from the console: reload the page."})
				return
			}
		}
		h(w, r, session{token: tok, cookie: ck.Value})
	}
}

func (c *console) signOutCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (c *console) signOut(w http.ResponseWriter, r *http.Request, _ session) {
	c.signOutCookie(w)
	http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
}

// callAs is a call context carrying tok as the caller's credential, from
// the HTTP client's address, as the REST gateway makes it.
func (c *console) callAs(r *http.Request, tok string) context.Context {
	ctx := caller.WithHTTPCall(r.Context(), caller.HTTPCall{RemoteAddr: r.RemoteAddr})
	return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tok))
}

// failed answers a call the service refused: a credential no longer valid
// ends the session; a permission it lacks is a 403 page.
func (c *console) failed(w http.ResponseWriter, r *http.Request, s session, err error) {
	switch status.Code(err) {
	case codes.Unauthenticated:
		c.signOutCookie(w)
		http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
	case codes.PermissionDenied:
		c.render(w, http.StatusForbidden, "error.html", page{Title: "Not allowed", CSRF: c.seal.csrfToken(s.cookie), Signed: true,
			Error: "This credential may not do that."})
	case codes.InvalidArgument, codes.NotFound:
		c.render(w, http.StatusBadRequest, "error.html", page{Title: "Not understood", CSRF: c.seal.csrfToken(s.cookie), Signed: true,
			Error: status.Convert(err).Message()})
	case codes.ResourceExhausted:
		c.render(w, http.StatusTooManyRequests, "error.html", page{Title: "Too many requests", CSRF: c.seal.csrfToken(s.cookie), Signed: true,
			Error: "This credential is over its limit: wait, then try again."})
	default:
		c.render(w, http.StatusServiceUnavailable, "error.html", page{Title: "Unavailable", CSRF: c.seal.csrfToken(s.cookie), Signed: true,
			Error: "The service could not answer: try again."})
	}
}

type keysPage struct {
	List *keyservicev1.ListKeysResponse
	Next string // the next page's address, "" on the last
}

func (c *console) keys(w http.ResponseWriter, r *http.Request, s session) {
	res, err := c.svc.ListKeys(c.callAs(r, s.token), &keyservicev1.ListKeysRequest{
		Owner: r.URL.Query().Get("owner"), Keyspace: r.URL.Query().Get("keyspace"),
		PageToken: r.URL.Query().Get("page"), PageSize: 50,
	})
	if err != nil {
		c.failed(w, r, s, err)
		return
	}
	next := ""
	if t := res.GetNextPageToken(); t != "" {
		q := url.Values{"page": {t}}
		for _, f := range []string{"owner", "keyspace"} {
			if v := r.URL.Query().Get(f); v != "" {
				q.Set(f, v) // a page token is bound to its filters
			}
		}
		next = "/console/keys?" + q.Encode()
	}
	c.render(w, http.StatusOK, "keys.html", page{Title: "Keys", CSRF: c.seal.csrfToken(s.cookie), Signed: true,
		Data: keysPage{List: res, Next: next}})
}
