package server_test

// A real browser for the console: headless Chromium driven by chromedp.
// The console_test.go tests check the console's HTTP answers; these check
// what a person sees and does: the page the browser shows, the form it
// submits, the cookie it keeps, and that no page breaks the
// Content-Security-Policy or throws.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	keyservicev1 "github.com/keyservice/keyservice/api/gen/keyservice/v1"
)

const (
	// browserTimeout bounds everything one browser does, start included.
	browserTimeout = 120 * time.Second
	// stepTimeout bounds one helper's wait (a selector that never shows
	// fails in seconds, not at browserTimeout).
	stepTimeout = 15 * time.Second
	// The window, so screenshots are the same size on every machine.
	windowWidth, windowHeight = 1280, 900
	// screenshotsEnv names the folder that shot writes to (make
	// screenshots sets it to docs/console); unset, shot writes nothing.
	screenshotsEnv = "KEYSERVICE_SCREENSHOTS"
)

// chromiumPath finds a Chromium or Chrome binary, or returns "".
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// browserFlags are Chromium's options: headless, as root (no sandbox),
// with no display or GPU, a small /dev/shm, and nothing that reaches
// the network by itself.
//
// No UserDataDir: chromedp then makes a temporary one per browser
// (--user-data-dir=$TMPDIR/chromedp-runner…) and removes it once the
// process has ended, retrying while Chromium's helpers still write there
// (t.TempDir would fail the test on that race).
func browserFlags(execPath string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless, // --headless --hide-scrollbars --mute-audio
		chromedp.NoSandbox,
		chromedp.DisableGPU, // --disable-gpu --enable-unsafe-swiftshader
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-breakpad", true),
		chromedp.WindowSize(windowWidth, windowHeight),
	}
}

// newBrowser starts a headless Chromium for one test and returns its tab.
// origin (the server's base URL) is granted clipboard access, so a test
// can press a copy button and read navigator.clipboard. Any exception,
// console error or CSP violation fails the test. With no browser on the
// machine the test is skipped, except under CI, where it fails.
func newBrowser(t testing.TB, origin string) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		const msg = "no Chromium (chromium, chromium-browser or google-chrome on PATH, or /usr/bin/chromium): apt-get install chromium"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (.ci/run installs it)")
		}
		t.Skip(msg)
	}
	var output syncBuffer // Chromium's stdout and stderr, shown if it fails
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	opts := append(browserFlags(path), chromedp.CombinedOutput(&output))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	// chromedp's own messages go to the test's log while the test runs.
	var logMu sync.Mutex
	ended := false
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if !ended {
			t.Logf("chromedp: "+format, args...)
		}
	}
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	// Cleanups run last first: the tab, the browser (it waits for the
	// process to end), then the deadline; the server's cleanup, registered
	// before, runs after, so no browser connection keeps it waiting.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
		logMu.Lock()
		ended = true
		logMu.Unlock()
	})

	started := time.Now()
	// The first call starts the browser.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name},
			Setting:    cdpbrowser.PermissionSettingGranted,
			Origin:     origin,
		})
		if err != nil {
			t.Fatalf("starting %s: %v\n%s", path, err, output.String())
		}
	}
	problems := &pageProblems{}
	if err := chromedp.Listen(ctx, problems.listen); err != nil {
		t.Fatalf("opening a tab in %s: %v\n%s", path, err, output.String())
	}
	// A headless tab never has the focus, and navigator.clipboard refuses
	// a page without it ("Document is not focused").
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatalf("focus emulation: %v", err)
	}
	// The window's size is not the page's: headless Chromium keeps room
	// for a window frame it does not draw (1280x900 gives a 1280x757 page).
	// Set the page's own, so screenshots are 1280 wide and at least 900 high.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(windowWidth, windowHeight)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	t.Logf("browser: %s started in %v", path, time.Since(started).Round(time.Millisecond))
	ctx = context.WithValue(ctx, problemsKey{}, problems)
	t.Cleanup(func() { checkProblems(t, ctx) }) // runs before the browser stops
	return ctx
}

// act runs one chromedp action with stepTimeout, failing the test on an
// error.
func act[T any](t testing.TB, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v (at %s)", what, err, location(t, ctx))
	}
	return v
}

// visit opens url and waits for the page (after any redirects) to load,
// and returns the HTTP status of the page it landed on.
func visit(t testing.TB, ctx context.Context, url string) int {
	t.Helper()
	resp := act(t, ctx, "visit "+url, chromedp.NavigateResponse(url))
	act(t, ctx, "visit "+url, chromedp.WaitReady(chromedp.CSS("body")))
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// submit clicks sel (a submit button, a link) and waits for the page the
// click navigates to, and returns its HTTP status.
func submit(t testing.TB, ctx context.Context, sel string) int {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: submit %s: %v (at %s)", sel, err, location(t, ctx))
	}
	act(t, ctx, "after submit "+sel, chromedp.WaitReady(chromedp.CSS("body")))
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// click clicks sel, for a control that does not leave the page (use
// submit for one that does).
func click(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	act(t, ctx, "click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// fill types value into the field sel, as a person would, replacing what
// it held.
func fill(t testing.TB, ctx context.Context, sel, value string) {
	t.Helper()
	act(t, ctx, "fill "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	// Not chromedp.SetValue(sel, ""): chromedp v0.23.1 drops an empty
	// string argument (JSON omitempty), the field becomes "undefined" and
	// SetValue fails.
	q, _ := json.Marshal(sel)
	act(t, ctx, "clear "+sel, chromedp.Evaluate[bool](`document.querySelector(`+string(q)+`).value = ""; true`))
	act(t, ctx, "fill "+sel, chromedp.SendKeys(chromedp.CSS(sel), value))
}

// text is the visible text of sel, once it is visible.
func text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	act(t, ctx, "wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	return act(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// exists reports whether the page has an element that matches sel now,
// without waiting for one.
func exists(t testing.TB, ctx context.Context, sel string) bool {
	t.Helper()
	return len(act(t, ctx, "look for "+sel, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0)))) > 0
}

// location is the page's URL ("" if the browser cannot tell).
func location(t testing.TB, ctx context.Context) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	u, err := chromedp.Run(sctx, chromedp.Location())
	if err != nil {
		t.Logf("browser: location: %v", err)
	}
	return u
}

// clipboardText reads the browser's clipboard as the page would
// (navigator.clipboard.readText; newBrowser granted the permission).
func clipboardText(t testing.TB, ctx context.Context) string {
	t.Helper()
	return act(t, ctx, "read the clipboard", chromedp.Evaluate[string]("navigator.clipboard.readText()", chromedp.EvalAwaitPromise))
}

// cookie is the browser's cookie name for url, or nil.
func cookie(t testing.TB, ctx context.Context, url, name string) *network.Cookie {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(sctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		t.Fatalf("browser: cookies of %s: %v", url, err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// shot takes a screenshot of the whole page (PNG, the window 1280 wide)
// and, when KEYSERVICE_SCREENSHOTS names a folder, writes it there as
// name.png; otherwise it does nothing.
func shot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return
	}
	// Quality 100 makes chromedp ask for a PNG (anything less is a JPEG).
	png := act(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The console in a real browser: signed out, /console/ leads to sign-in;
// the admin token signs in to the keys table; the session cookie is
// HttpOnly and SameSite=Strict; signing out ends the session. No page
// throws or breaks the Content-Security-Policy.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	for _, name := range []string{"browser-alpha", "browser-beta"} {
		createKey(t, e, &keyservicev1.CreateKeyRequest{Name: name, Owner: "acme"})
	}
	ctx := newBrowser(t, e.base)

	if code := visit(t, ctx, e.base+"/console/"); code != 200 || location(t, ctx) != e.base+"/console/sign-in" {
		t.Fatalf("/console/ signed out: %d at %s, want 200 at /console/sign-in", code, location(t, ctx))
	}
	if exists(t, ctx, "#sign-out") {
		t.Fatal("signed out, the page offers to sign out")
	}

	fill(t, ctx, "#token", adminToken)
	if code := submit(t, ctx, "#sign-in"); code != 200 || location(t, ctx) != e.base+"/console/keys" {
		t.Fatalf("sign-in: %d at %s, want 200 at /console/keys", code, location(t, ctx))
	}
	table := text(t, ctx, "table#keys")
	for _, name := range []string{"browser-alpha", "browser-beta"} {
		if !strings.Contains(table, name) {
			t.Errorf("the keys table does not show %s:\n%s", name, table)
		}
	}
	if !exists(t, ctx, "#sign-out") {
		t.Error("signed in, no sign-out button")
	}

	ck := cookie(t, ctx, e.base+"/console/", "keyservice_console")
	if ck == nil {
		t.Fatal("no session cookie after sign-in")
	}
	if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/console/" {
		t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q; want HttpOnly, Strict, /console/", ck.HTTPOnly, ck.SameSite, ck.Path)
	}
	if js := act(t, ctx, "document.cookie", chromedp.Evaluate[string]("document.cookie")); strings.Contains(js, "keyservice_console") {
		t.Errorf("the page's script can read the session cookie: %q", js)
	}

	if code := submit(t, ctx, "#sign-out"); code != 200 || location(t, ctx) != e.base+"/console/sign-in" {
		t.Fatalf("sign-out: %d at %s, want 200 at /console/sign-in", code, location(t, ctx))
	}
	if !exists(t, ctx, "#token") {
		t.Error("after sign-out, no token field")
	}
	if ck := cookie(t, ctx, e.base+"/console/", "keyservice_console"); ck != nil {
		t.Errorf("the session cookie is still there after sign-out: %+v", ck)
	}
	if visit(t, ctx, e.base+"/console/keys"); location(t, ctx) != e.base+"/console/sign-in" {
		t.Fatalf("/console/keys after sign-out: at %s, want /console/sign-in", location(t, ctx))
	}
}

// The harness itself: what it must catch, it catches (a Chromium that
// stopped reporting CSP violations the way it does would otherwise let
// every browser test pass blind), a problem a test expects does not fail
// it, and the clipboard is granted.
func TestConsoleInABrowserCatchesPageProblems(t *testing.T) {
	t.Parallel()
	e := start(t, withConsole)
	ctx := newBrowser(t, e.base)
	visit(t, ctx, e.base+"/console/sign-in")

	act(t, ctx, "write the clipboard", chromedp.Evaluate[bool](`navigator.clipboard.writeText("copied in a test").then(() => true)`, chromedp.EvalAwaitPromise))
	if got := clipboardText(t, ctx); got != "copied in a test" {
		t.Errorf("clipboard: %q", got)
	}

	// An inline script and an image from another origin break the
	// policy; a throw and a console.error are the page's own.
	act(t, ctx, "break the page", chromedp.Evaluate[bool](`
		var s = document.createElement("script"); s.textContent = "window.inlineRan = true"; document.body.appendChild(s);
		var i = document.createElement("img"); i.src = "http://127.0.0.2:1/elsewhere.png"; document.body.appendChild(i);
		console.error("a console error");
		setTimeout(function () { throw new Error("a thrown error"); }, 0);
		true`))
	want := map[string][]string{ // each caught as a message with all these
		"inline script": {"(security)", "Content Security Policy", "script-src"},
		"image":         {"(security)", "Content Security Policy", "img-src", "elsewhere.png"},
		"console.error": {"console.error: a console error"},
		"exception":     {"exception", "a thrown error"},
	}
	var seen []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, _ := problemsOf(ctx).take()
		seen = append(seen, got...)
		var missing []string
		for what, w := range want {
			if !slices.ContainsFunc(seen, func(m string) bool {
				return !slices.ContainsFunc(w, func(part string) bool { return !strings.Contains(m, part) })
			}) {
				missing = append(missing, what)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the harness did not catch: %s; it caught:\n%s", strings.Join(missing, ", "), strings.Join(seen, "\n"))
		}
	}
	for _, m := range seen {
		t.Logf("caught: %s", m)
	}
	if ran := act(t, ctx, "inline script ran?", chromedp.Evaluate[bool](`window.inlineRan === true`)); ran {
		t.Error("the inline script ran: the policy did not hold")
	}

	// A wrong token is answered 401, which the browser reports; expected,
	// it does not fail the test.
	expectProblem(ctx, "status of 401")
	fill(t, ctx, "#token", "not-a-credential-0123456789")
	if code := submit(t, ctx, "#sign-in"); code != 401 || !strings.Contains(text(t, ctx, "main"), "not a credential") {
		t.Errorf("wrong token: %d, %q", code, text(t, ctx, "main"))
	}
	waitFor(t, func() bool {
		p := problemsOf(ctx)
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.seen) > 0
	})
	if unexpected, expected := problemsOf(ctx).take(); len(unexpected) > 0 || len(expected) == 0 {
		t.Errorf("after a wrong token: unexpected %q, expected %q", unexpected, expected)
	}
}
