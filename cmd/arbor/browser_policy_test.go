package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// TestBrowserPolicy drives real Chromium through an `arbor dev` with a
// policy (docs/policy.md), as issue 19's browser check asks, reading what
// the pages say rather than only their statuses:
//
//   - admin: octocat signs in and /admin/ shows the app's page; taken out
//     of team vintner/platform through the fake GitHub's control endpoint,
//     after the next re-check (every 2s here) a reload of /admin/ shows
//     Arbor's explaining page (403, route_not_allowed, the rule, what to
//     do) while the rest of the app still works; put back, /admin/ works
//     again.
//   - restricted: a route for organisation acme, which octocat belongs to
//     but which restricts OAuth apps, explains that the organisation must
//     approve the app.
//   - refused: with policy.allow.groups [github:vintner], hubot (in no
//     group) lands on the explaining page of a refused sign-in
//     (not_allowed) and the browser holds no session cookie.
//
// It starts its own `arbor dev` (the policy below replaces dev's default
// one) and shares the other browser tests' Chromium.
func TestBrowserPolicy(t *testing.T) {
	env := useBrowserEnv(t)
	artifacts := artifactDir(t)
	dev, stop := startDev(t,
		"ARBOR_POLICY_RECHECK_INTERVAL=2s",
		"ARBOR_POLICY_ALLOW_GROUPS=github:vintner",
		"ARBOR_POLICY_ROUTES=[{prefix: /admin/, groups: [github:vintner/platform]}, {prefix: /acme/, groups: [github:acme]}]",
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("arbor dev (policy) output:\n%s", tail(dev.logs.String(), 20000))
		}
		stop(t)
	})
	github := devFakeURL(t, dev, "github")
	const limit = 90 * time.Second

	t.Run("admin", func(t *testing.T) {
		b, closeTab := newBrowserTab(t, env.browserCtx, dev, limit)
		defer closeTab()
		b.do("open /admin/", chromedp.Navigate(dev.base+"/admin/"))
		b.waitPage("the sign-in page", func(_ pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/auth/sign-in"
		})
		st := b.signInWith("github", "octocat", "/admin/ after sign-in", func(_ pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/admin/"
		})
		b.wantSignedIn(st, "on /admin/")
		if st.DemoPath != "/admin/" {
			t.Errorf("the app's page shows path %q, want /admin/", st.DemoPath)
		}
		if g := st.identity()["X-Arbor-User-Groups"]; g != "github:vintner,github:vintner/platform" {
			t.Errorf("X-Arbor-User-Groups %q, want github:vintner,github:vintner/platform (acme hides itself from the app)", g)
		}
		b.screenshot(filepath.Join(artifacts, "browser-policy-admin.png"))

		// Out of the team; still in vintner (policy.allow) and acme.
		setFakeMemberships(t, github, "octocat", "vintner", "acme")
		d := b.reloadUntil("/admin/", "the explaining page", 30*time.Second, func(d deniedPage) bool {
			return d.Code == "route_not_allowed"
		})
		b.wantDenied(d, 403, "route_not_allowed",
			"The pages under /admin/ are limited to members of the GitHub group vintner/platform.",
			"for access to /admin/")
		b.screenshot(filepath.Join(artifacts, "browser-policy-admin-denied.png"))
		if b.cookie() == nil {
			t.Error("a refused route signed the browser out; only the route is refused")
		}
		b.do("open /", chromedp.Navigate(dev.base+"/"))
		st = b.waitPage("the app's home page", func(_ pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/"
		})
		b.wantSignedIn(st, "on / after leaving the team")
		if g := st.identity()["X-Arbor-User-Groups"]; g != "github:vintner" {
			t.Errorf("after leaving the team X-Arbor-User-Groups %q, want github:vintner", g)
		}

		// Back in the team: /admin/ works again after the next re-check.
		setFakeMemberships(t, github, "octocat", "vintner", "vintner/platform", "acme")
		d = b.reloadUntil("/admin/", "the app's /admin/ page", 30*time.Second, func(d deniedPage) bool {
			return d.SignedIn == "Signed in."
		})
		if d.Code != "" {
			t.Errorf("back in the team, /admin/ still answers %q", d.Code)
		}
	})

	t.Run("restricted", func(t *testing.T) {
		b, closeTab := newBrowserTab(t, env.browserCtx, dev, limit)
		defer closeTab()
		b.do("open /", chromedp.Navigate(dev.base+"/"))
		b.waitPage("the sign-in page", func(_ pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/auth/sign-in"
		})
		b.signInWith("github", "octocat", "the app after sign-in", func(_ pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/"
		})
		b.do("open /acme/", chromedp.Navigate(dev.base+"/acme/"))
		d := b.readDenied("/acme/")
		b.wantDenied(d, 403, "route_not_allowed",
			"The pages under /acme/ are limited to members of the GitHub group acme.",
			"the organisation restricts which apps may see it",
			"An owner of the organisation must approve")
		b.screenshot(filepath.Join(artifacts, "browser-policy-restricted.png"))
	})

	t.Run("refused", func(t *testing.T) {
		b, closeTab := newBrowserTab(t, env.browserCtx, dev, limit)
		defer closeTab()
		b.do("open /", chromedp.Navigate(dev.base+"/"))
		b.waitPage("the sign-in page", func(_ pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/auth/sign-in"
		})
		b.do("click github", chromedp.Click(chromedp.CSS(`a.provider-button[data-provider="github"]`)))
		b.waitPage("github's consent page", func(st pageState, u *url.URL) bool {
			return u.Host != dev.host && st.Approve
		})
		b.do("choose hubot", chromedp.SetValue(chromedp.CSS(`select#fake_user`), "hubot"))
		b.do("approve sign-in", chromedp.Click(chromedp.CSS(`button[name="decision"][value="approve"]`)))
		d := b.readDenied("/auth/callback/github")
		b.wantDenied(d, 403, "not_allowed",
			"Access to Trellis is limited to members of the GitHub group vintner.",
			"ask the people who run Trellis to add you")
		if d.Back != "Sign in with another account" || !strings.HasPrefix(d.BackHref, "/auth/sign-in") {
			t.Errorf("the refused sign-in's page offers %q (%s), want a way back to sign in with another account", d.Back, d.BackHref)
		}
		if c := b.cookie(); c != nil {
			t.Errorf("a refused sign-in left the browser a session cookie %s", c.Name)
		}
		b.screenshot(filepath.Join(artifacts, "browser-policy-refused.png"))
		// And the app is still closed to this browser.
		b.do("open /admin/", chromedp.Navigate(dev.base+"/admin/"))
		b.waitPage("the sign-in page", func(_ pageState, u *url.URL) bool {
			return u.Host == dev.host && u.Path == "/auth/sign-in"
		})
	})
}

// deniedPage is what a person sees on a page: Arbor's explaining page, or
// the app's.
type deniedPage struct {
	Href     string `json:"href"`
	Ready    string `json:"ready"`
	Title    string `json:"title"`
	Code     string `json:"code"`     // data-error
	Heading  string `json:"heading"`  // h1
	Text     string `json:"text"`     // the visible text of the main card
	Back     string `json:"back"`     // the button back, if any
	BackHref string `json:"backHref"` // where it leads
	SignedIn string `json:"signedIn"` // the app's "Signed in."
	status   int64
}

const deniedPageJS = `(() => {
	const q = (s) => document.querySelector(s);
	const err = q('.arbor-error');
	const h1 = q('h1');
	const back = q('main a.button');
	const who = q('.who strong');
	return {
		href: location.href,
		ready: document.readyState,
		title: document.title,
		code: err ? (err.getAttribute('data-error') || '') : '',
		heading: h1 ? h1.innerText : '',
		text: err ? err.innerText : '',
		back: back ? back.innerText : '',
		backHref: back ? (back.getAttribute('href') || '') : '',
		signedIn: who ? who.textContent : '',
	};
})()`

// readDenied waits for a loaded page whose path is path and returns what
// it shows (Arbor's page or the app's).
func (b *browserTab) readDenied(path string) deniedPage {
	b.t.Helper()
	var last deniedPage
	for {
		ectx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		d, err := chromedp.Run(ectx, chromedp.Evaluate[deniedPage](deniedPageJS))
		cancel()
		if err == nil {
			last = d
			if u, perr := url.Parse(d.Href); perr == nil && d.Ready == "complete" && u.Host == b.dev.host && u.Path == path {
				d.status = b.status(d.Href)
				return d
			}
		}
		select {
		case <-b.ctx.Done():
			b.t.Fatalf("waiting for %s: %v; last page %s (%s, title %q)\nnavigation:\n%s", path, b.ctx.Err(), last.Href, last.Ready, last.Title, b.navigation())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reloadUntil opens path again and again (bounded by within) until done
// says the page is the one wanted, and returns it.
func (b *browserTab) reloadUntil(path, what string, within time.Duration, done func(deniedPage) bool) deniedPage {
	b.t.Helper()
	start := time.Now()
	for n := 1; ; n++ {
		b.do("open "+path, chromedp.Navigate(b.dev.base+path))
		d := b.readDenied(path)
		if done(d) {
			b.t.Logf("%s after %v (%d loads)", what, time.Since(start).Round(time.Millisecond), n)
			return d
		}
		if time.Since(start) > within {
			b.t.Fatalf("%s: not there %v later (%d loads); the last shows %q %q: %s", what, within, n, d.Code, d.SignedIn, d.Text)
		}
		b.do("wait", chromedp.Sleep(300*time.Millisecond))
	}
}

// wantDenied checks Arbor's explaining page: its status and code, the
// title a person reads, and that its visible text says each of words.
func (b *browserTab) wantDenied(d deniedPage, status int64, code string, words ...string) {
	b.t.Helper()
	if d.status != status || d.Code != code {
		b.t.Errorf("%s: status %d code %q, want %d %q\nnavigation:\n%s", d.Href, d.status, d.Code, status, code, b.navigation())
	}
	if d.Heading != "Access denied" || !strings.HasPrefix(d.Title, "Access denied") {
		b.t.Errorf("%s: heading %q title %q, want Access denied", d.Href, d.Heading, d.Title)
	}
	for _, w := range words {
		if !strings.Contains(d.Text, w) {
			b.t.Errorf("%s: the page does not say %q; it reads:\n%s", d.Href, w, d.Text)
		}
	}
}

// devFakeURL reads a fake provider's URL from the banner `arbor dev`
// printed ("fake providers: bitbucket http://…, github http://…, …").
func devFakeURL(t *testing.T, dev *devServer, name string) string {
	t.Helper()
	for _, line := range strings.Split(dev.logs.String(), "\n") {
		_, list, ok := strings.Cut(line, "fake providers: ")
		if !ok {
			continue
		}
		for _, entry := range strings.Split(list, ", ") {
			if n, u, _ := strings.Cut(strings.TrimSpace(entry), " "); n == name {
				return u
			}
		}
	}
	t.Fatalf("arbor dev printed no URL for the fake %s:\n%s", name, dev.logs.String())
	return ""
}

// setFakeMemberships replaces a fake user's groups through the fake's
// control endpoint, as a person trying `arbor dev` does with curl.
func setFakeMemberships(t *testing.T, fake, user string, groups ...string) {
	t.Helper()
	body := fmt.Sprintf(`{"user": %q, "groups": [%s]}`, user, quoteAll(groups))
	resp, err := http.Post(fake+fakeprovider.ControlMembershipsPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s%s %s: %s", fake, fakeprovider.ControlMembershipsPath, body, resp.Status)
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
