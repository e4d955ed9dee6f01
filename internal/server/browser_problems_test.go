package server_test

// What a page reports that a person would see as broken, collected from
// the browser while a test runs (browser_test.go).

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
)

// pageProblems collects what a page reports that a person would see as
// broken: uncaught exceptions, console.error calls and the browser's own
// errors, which include every Content-Security-Policy violation ("Refused
// to load ... because it violates the following Content Security Policy
// directive") and every resource that failed to load.
type pageProblems struct {
	mu       sync.Mutex
	seen     []string
	expected []string // substrings of messages a test provoked on purpose
}

func (p *pageProblems) add(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, msg)
}

// take returns the problems seen so far that were not expected, and
// forgets them.
func (p *pageProblems) take() (unexpected, expected []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.seen {
		ok := false
		for _, e := range p.expected {
			if strings.Contains(m, e) {
				ok = true
				break
			}
		}
		if ok {
			expected = append(expected, m)
		} else {
			unexpected = append(unexpected, m)
		}
	}
	p.seen = nil
	return unexpected, expected
}

// listen is the chromedp event handler: it must return fast and call no
// command.
func (p *pageProblems) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		p.add(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			if a.Description != "" {
				args = append(args, a.Description)
			} else {
				args = append(args, strings.Trim(string(a.Value), `"`))
			}
		}
		p.add(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		// Errors of any source; from "security" (CSP and the like), warnings too.
		// (The console declares its icon: a page without it would make
		// the browser ask for /favicon.ico, a 404 reported here.)
		if e.Level == cdplog.EntryLevelError || (e.Source == cdplog.EntrySourceSecurity && e.Level == cdplog.EntryLevelWarning) {
			p.add(fmt.Sprintf("browser %s (%s) at %s: %s", e.Level, e.Source, e.URL, e.Text))
		}
	}
}

type problemsKey struct{}

func problemsOf(ctx context.Context) *pageProblems {
	p, _ := ctx.Value(problemsKey{}).(*pageProblems)
	return p
}

// expectProblem lets a test provoke a browser error on purpose (a 401
// page after a wrong token is "Failed to load resource: ... 401"): a
// problem whose text contains substr no longer fails the test.
func expectProblem(ctx context.Context, substr string) {
	p := problemsOf(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expected = append(p.expected, substr)
}

// checkProblems fails the test for every problem a page reported since the
// last check. newBrowser runs it at cleanup; call it to pin a problem to a
// step.
func checkProblems(t testing.TB, ctx context.Context) {
	t.Helper()
	unexpected, expected := problemsOf(ctx).take()
	for _, m := range expected {
		t.Logf("browser (expected): %s", m)
	}
	for _, m := range unexpected {
		t.Errorf("browser: %s", m)
	}
}

// forgetExpected ends what expectProblem allowed: from now on such a
// problem fails the test again (check the expected one first).
func forgetExpected(ctx context.Context) {
	p := problemsOf(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expected = nil
}
