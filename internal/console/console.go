// Package console serves the operators' console at /console on the HTTP
// port: pages drawn by the server from embedded templates, one style sheet
// and one small script (the copy button), charts drawn by the server as
// SVG, nothing fetched at run time. Every page calls the service through
// the same interceptor chain as REST, with the signed-in credential, so
// the service enforces what the credential may do; the console only hides
// the controls the credential may not use.
package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
	"github.com/keyservice/keyservice/internal/caller"
	"github.com/keyservice/keyservice/internal/perm"
)

//go:embed assets templates
var files embed.FS

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))

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
	// Who says what a credential's token may do, to draw only the
	// controls it may use (the service checks every call whatever it
	// says), and whether it is a usable credential at all.
	Who func(token string) (Who, Access)
	// SignIn is the failed-attempt guard of sign-ins (ratelimit.Callers
	// SignIn); nil: none.
	SignIn func(addr netip.Addr) (ok bool, retry time.Duration, done func(failed bool))
	// ClientAddr is the HTTP client's address as REST sees it (behind a
	// trusted proxy, the end client it names; gateway.ClientAddr); nil:
	// the peer.
	ClientAddr func(r *http.Request) (addr netip.Addr, unusable bool)
	Log        *slog.Logger
	// Registry takes the console's metrics; nil: not exported.
	Registry prometheus.Registerer
}

// Who is what a signed-in credential may do.
type Who struct {
	Name         string // the credential's name (the audit trail's actor)
	Perms        perm.Set
	AllKeyspaces bool
}

// Access says whether a token is a usable credential.
type Access int

// Answers of Config.Who.
const (
	// Usable: a credential, not revoked, not expired.
	Usable Access = iota
	// Refused: not a credential, or revoked or expired.
	Refused
	// Unknown: the credentials are not loaded yet on this replica: the
	// session is kept, the page is unavailable.
	Unknown
)

type console struct {
	svc    keyservicev1.KeyServiceServer
	seal   *sealer
	now    func() time.Time
	who    func(string) (Who, Access)
	signIn func(netip.Addr) (bool, time.Duration, func(bool))
	addr   func(*http.Request) (netip.Addr, bool)
	log    *slog.Logger
	// signIns counts sign-ins by outcome: signed_in, refused (not a
	// usable credential), no_permission, guarded (the failed-attempt
	// budget was spent), unavailable.
	signIns *prometheus.CounterVec
}

// New returns the console's handler, to be mounted at /console/.
func New(cfg Config) (http.Handler, error) {
	s, err := newSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	c := &console{svc: cfg.Service, seal: s, now: cfg.Now, who: cfg.Who, signIn: cfg.SignIn, addr: cfg.ClientAddr, log: cfg.Log}
	if c.now == nil {
		c.now = time.Now
	}
	if c.who == nil {
		c.who = func(string) (Who, Access) { return Who{}, Usable }
	}
	if c.addr == nil {
		c.addr = func(r *http.Request) (netip.Addr, bool) { return peerAddr(r), false }
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyservice_console_sign_ins_total",
		Help: "Console sign-ins by outcome: signed_in, refused, no_permission, guarded, unavailable."}, []string{"outcome"})
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(c.signIns); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /console/assets/", http.StripPrefix("/console/", http.FileServerFS(files)))
	mux.HandleFunc("GET /console/{$}", c.signedIn(func(w http.ResponseWriter, r *http.Request, s session) {
		if h := home(s.who.Perms); h != "" {
			http.Redirect(w, r, h, http.StatusSeeOther)
			return
		}
		c.errorPage(w, s, http.StatusForbidden, "Nothing to show", "This credential may read none of what the console shows.")
	}))
	mux.HandleFunc("GET /console/sign-in", c.signInPage)
	mux.HandleFunc("POST /console/sign-in", c.signInForm)
	mux.HandleFunc("POST /console/sign-out", c.signOut)
	c.keyRoutes(mux)
	c.adminRoutes(mux)
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

// csp allows the console's own sheet and script and nothing inline: no
// inline script, no style attribute (charts use SVG presentation
// attributes), no other origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets what every console answer carries: a strict
// Content-Security-Policy, no framing, no caching, no sniffing, no
// referrer.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
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
	Who    Who
	Nav    string    // the section the page belongs to
	Now    time.Time // the console's clock, for states drawn on the page
}

// May reports whether the signed-in credential has permission name: the
// templates draw a control only when it may be used.
func (p page) May(name string) bool {
	s, err := perm.Parse([]string{name})
	return err == nil && p.Who.Perms&s == s
}

// render draws the page into a buffer first: a template that fails is a
// 500 and a log line, never half a page.
func (c *console) render(w http.ResponseWriter, code int, name string, p page) {
	if p.Now.IsZero() {
		p.Now = c.now()
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, p); err != nil {
		c.log.Error("console page failed to draw", "page", name, "error", err)
		http.Error(w, "the console could not draw this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// page is a signed-in page's frame.
func (c *console) page(s session, title, nav string, data any) page {
	return page{Title: title, CSRF: c.seal.csrfToken(s.cookie), Signed: true, Who: s.who, Data: data, Nav: nav}
}

func (c *console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "signin.html", page{Title: "Sign in"})
}

// signInForm takes a credential's token from the form (never the URL),
// through the failed-attempt guard (a wrong token spends the address's
// budget, as a wrong key does on Validate), and proves it with a call the
// console needs (listing keyspaces) through the chain, which refuses a
// wrong token as it does over REST.
func (c *console) signInForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if tok == "" {
		c.render(w, http.StatusBadRequest, "signin.html", page{Title: "Sign in", Error: "Enter a credential's token."})
		return
	}
	done := func(bool) {}
	if c.signIn != nil {
		end, _ := c.addr(r)
		ok, retry, d := c.signIn(end)
		if !ok {
			c.signIns.WithLabelValues("guarded").Inc()
			c.log.Warn("console sign-in refused: too many failed sign-ins from this client", "client", end)
		}
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(int(retry.Seconds()+0.999), 1)))
			c.render(w, http.StatusTooManyRequests, "signin.html", page{Title: "Sign in", Error: "Too many failed sign-ins from this address: wait, then try again."})
			return
		}
		done = d
	}
	end, _ := c.addr(r)
	who, access := c.who(tok)
	switch {
	case access == Unknown:
		done(false)
		c.signIns.WithLabelValues("unavailable").Inc()
		c.log.Warn("console sign-in: credentials not loaded yet", "client", end)
		c.render(w, http.StatusServiceUnavailable, "signin.html", page{Title: "Sign in", Error: "This replica has not loaded the credentials yet: try again in a moment."})
		return
	case access == Refused:
		done(true)
		c.signIns.WithLabelValues("refused").Inc()
		c.log.Info("console sign-in refused: not a usable credential", "client", end)
		c.render(w, http.StatusUnauthorized, "signin.html", page{Title: "Sign in", Error: "That token is not a credential that may use the console."})
		return
	case home(who.Perms) == "":
		done(false) // a real credential: no guess
		c.signIns.WithLabelValues("no_permission").Inc()
		c.log.Info("console sign-in refused: the credential may read nothing the console shows", "client", end, "credential", who.Name)
		c.render(w, http.StatusForbidden, "signin.html", page{Title: "Sign in", Error: "That credential may read none of what the console shows (it needs keys.read, audit.read, keyspaces.read or credentials.read)."})
		return
	}
	done(false)
	c.signIns.WithLabelValues("signed_in").Inc()
	c.log.Info("console sign-in", "client", end, "credential", who.Name)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: c.seal.seal(tok, c.now().Add(sessionFor)), Path: "/console/",
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(sessionFor / time.Second)})
	http.Redirect(w, r, home(who.Perms), http.StatusSeeOther)
}

// home is the first section a credential may read.
func home(p perm.Set) string {
	for _, s := range []struct {
		p    perm.Permission
		path string
	}{{perm.KeysRead, "/console/keys"}, {perm.AuditRead, "/console/audit"}, {perm.KeyspacesRead, "/console/keyspaces"}, {perm.CredentialsRead, "/console/credentials"}} {
		if p.Has(s.p) {
			return s.path
		}
	}
	return ""
}

// Home is the first section the signed-in credential may read.
func (p page) Home() string { return home(p.Who.Perms) }

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

// peerAddr is the HTTP connection's peer.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.IPv6Unspecified()
	}
	return ap.Addr()
}

// session is a signed-in request's credential token, cookie and
// permissions.
type session struct {
	token, cookie string
	who           Who
}

// signedIn runs h for a request with a valid session; a write must carry
// the session's CSRF token.
func (c *console) signedIn(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieName)
		if err != nil {
			// No cookie: not signed in, or a link followed from another
			// site (a SameSite=Strict cookie is not sent then). Nothing
			// to remove; a page from another site gets a link to follow
			// here, which sends the cookie.
			if r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
				c.render(w, http.StatusOK, "continue.html", page{Title: "Continue to the console", Data: r.URL.RequestURI()})
				return
			}
			http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
			return
		}
		tok, err := c.seal.open(ck.Value, c.now())
		var who Who
		if err == nil {
			var access Access
			switch who, access = c.who(tok); access {
			case Refused:
				err = errBadSession // revoked or expired: the session ends here
			case Unknown:
				// Not loaded here yet: the session stays (another
				// replica, or this one in a moment, knows it).
				c.render(w, http.StatusServiceUnavailable, "error.html", page{Title: "Unavailable", Error: "This replica has not loaded the credentials yet: reload in a moment."})
				return
			}
		}
		if err != nil {
			c.signOutCookie(w)
			http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !c.seal.csrfOK(ck.Value, r.PostFormValue("csrf")) {
				c.render(w, http.StatusForbidden, "error.html", page{Title: "Refused", Error: "This form is out of date or did not come from the console: reload the page."})
				return
			}
		}
		h(w, r, session{token: tok, cookie: ck.Value, who: who})
	}
}

func (c *console) signOutCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// signOut needs the session's CSRF token, and no more: it works on a
// replica that cannot check the credential right now.
func (c *console) signOut(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(cookieName)
	if err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !c.seal.csrfOK(ck.Value, r.PostFormValue("csrf")) {
			c.render(w, http.StatusForbidden, "error.html", page{Title: "Refused", Error: "This form is out of date or did not come from the console: reload the page."})
			return
		}
	}
	c.signOutCookie(w)
	http.Redirect(w, r, "/console/sign-in", http.StatusSeeOther)
}

// callAs is a call context carrying tok as the caller's credential, from
// the HTTP client's address, as the REST gateway makes it.
func (c *console) callAs(r *http.Request, tok string) context.Context {
	end, unusable := c.addr(r)
	ctx := caller.WithHTTPCall(r.Context(), caller.HTTPCall{RemoteAddr: r.RemoteAddr, ClientAddr: end, ChainUnusable: unusable})
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
		c.errorPage(w, s, http.StatusForbidden, "Not allowed", "This credential may not do that: "+status.Convert(err).Message())
	case codes.NotFound:
		c.errorPage(w, s, http.StatusNotFound, "Not found", status.Convert(err).Message())
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.OutOfRange:
		c.errorPage(w, s, http.StatusBadRequest, "Not understood", status.Convert(err).Message())
	case codes.Unavailable:
		c.errorPage(w, s, http.StatusServiceUnavailable, "Unavailable", "The service could not answer: try again.")
	case codes.ResourceExhausted:
		c.errorPage(w, s, http.StatusTooManyRequests, "Too many requests", "This credential is over its limit: wait, then try again.")
	default:
		c.errorPage(w, s, http.StatusServiceUnavailable, "Unavailable", "The service could not answer: try again.")
	}
}

func (c *console) errorPage(w http.ResponseWriter, s session, code int, title, msg string) {
	p := c.page(s, title, "", nil)
	p.Error = msg
	c.render(w, code, "error.html", p)
}
