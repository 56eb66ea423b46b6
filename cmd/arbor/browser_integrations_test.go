package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserIntegrations connects and disconnects GitHub on the
// Integrations page in Chromium, through the same `arbor dev` and browser
// as TestBrowserSignIn (see useBrowserEnv): sign in with GitHub from a
// link to /integrations, Connect (the fake's consent page, Arbor's
// callback, back to /integrations?notice=connected), the provider token
// API, Disconnect with its confirmation page, and the token API's 404
// afterwards. Screenshots: integrations-before.png,
// integrations-connected.png, integrations-disconnected.png.
func TestBrowserIntegrations(t *testing.T) {
	env := useBrowserEnv(t)
	artifacts := artifactDir(t)
	start := time.Now()
	browserIntegrationsFlow(t, env.browserCtx, env.dev, artifacts)
	t.Logf("whole flow took %v", time.Since(start).Round(time.Millisecond))
}

const (
	integrationsProvider = "github"
	integrationsLogin    = "octocat" // the fake GitHub's default user
	integrationsRevoked  = "Disconnected, and the access was revoked at the provider."
)

func browserIntegrationsFlow(t *testing.T, browserCtx context.Context, dev *devServer, artifacts string) {
	b, closeTab := newBrowserTab(t, browserCtx, dev, browserStepLimit)
	defer closeTab()
	const p = integrationsProvider
	page := dev.base + "/integrations"
	tokenPath := "/api/providers/" + p + "/token"

	// 1. Without a session the page asks for sign-in and comes back to it.
	b.do("open "+page, chromedp.Navigate(page))
	st := b.waitPage("the sign-in page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/auth/sign-in"
	})
	if got := st.url(t).Query().Get("return_to"); got != "/integrations" {
		t.Errorf("/integrations without a session lands on %s: return_to=%q, want /integrations", st.Href, got)
	}
	b.wantHop("GET", page, 302, "/auth/sign-in?return_to=%2Fintegrations")
	st = b.signInWith(p, integrationsLogin, "the Integrations page after sign-in", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/integrations"
	})
	b.wantHop("GET", dev.base+"/auth/callback/"+p, 302, "/integrations")
	if !strings.Contains(st.Title, "Integrations") {
		t.Errorf("Integrations page title %q", st.Title)
	}
	if st.Scripts != 0 {
		t.Errorf("Integrations page has %d <script> elements", st.Scripts)
	}

	// 2. Every Git provider has a card; signing in did not connect GitHub.
	ip := b.integrationsPage()
	var names []string
	for _, c := range ip.Cards {
		names = append(names, c.Provider)
		if c.ID != "card-"+c.Provider {
			t.Errorf("card for %q has id %q, want card-%s", c.Provider, c.ID, c.Provider)
		}
	}
	slices.Sort(names)
	if want := []string{"bitbucket", "github", "gitlab"}; !slices.Equal(names, want) {
		t.Errorf("Integrations page has cards %v, want %v\n%s", names, want, snippet(st.HTML))
	}
	if ip.Notice != "" {
		t.Errorf("Integrations page shows notice %q before anything happened", ip.Notice)
	}
	gh := ip.card(t, p)
	if gh.State != "not_connected" || gh.ConnectHref != "/integrations/"+p+"/connect" ||
		!strings.HasPrefix(gh.ConnectText, "Connect ") || gh.DisconnectHref != "" || gh.Account != "" {
		t.Fatalf("after sign-in the %s card is %+v; want not_connected with a Connect button only", p, gh)
	}
	b.screenshot(filepath.Join(artifacts, "integrations-before.png"))

	// 3. Connect: the fake's consent page, asking for repository access,
	// then back through Arbor's callback to the page, now connected.
	b.do("click Connect", chromedp.Click(chromedp.CSS(`#card-`+p+` a.button.connect`)))
	st = b.waitPage(p+"'s consent page for connecting", func(st pageState, u *url.URL) bool {
		return u.Host != dev.host && st.Approve
	})
	b.wantHop("GET", dev.base+"/integrations/"+p+"/connect", 302, "")
	if scope := st.url(t).Query().Get("scope"); !strings.Contains(scope, "repo") {
		t.Errorf("connecting asks the fake for scope %q; want repository access (repo)", scope)
	}
	if st.FakeUser != integrationsLogin {
		t.Errorf("consent page for connecting selects %q, want %q", st.FakeUser, integrationsLogin)
	}
	b.do("approve connecting", chromedp.Click(chromedp.CSS(`button[name="decision"][value="approve"]`)))
	st = b.waitPage("the Integrations page after connecting", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/integrations" && u.Query().Get("notice") == "connected"
	})
	b.wantHop("GET", dev.base+"/auth/callback/"+p, 302, "/integrations?notice=connected")
	ip = b.integrationsPage()
	if ip.Notice != "Connected." {
		t.Errorf("after connecting the notice reads %q, want %q", ip.Notice, "Connected.")
	}
	gh = ip.card(t, p)
	if gh.State != "active" || gh.Account != integrationsLogin || gh.DisconnectHref != "/integrations/"+p+"/disconnect" || gh.ConnectHref != "" {
		t.Fatalf("after connecting the %s card is %+v; want active, account %q, a Disconnect button\n%s", p, gh, integrationsLogin, snippet(st.HTML))
	}
	for _, c := range ip.Cards {
		if c.Provider != p && c.State != "not_connected" {
			t.Errorf("connecting %s changed the %s card: %+v", p, c.Provider, c)
		}
	}
	b.screenshot(filepath.Join(artifacts, "integrations-connected.png"))

	// 4. The token API, in the browser and from a plain client with the
	// browser's session cookie.
	code, body, arborErr := b.openDocument(tokenPath)
	if code != http.StatusOK || arborErr != "" {
		t.Fatalf("GET %s in the browser: %d, arbor-error %q\n%s", tokenPath, code, arborErr, snippet(body))
	}
	var tok struct {
		Provider    string   `json:"provider"`
		AccessToken string   `json:"access_token"`
		TokenType   string   `json:"token_type"`
		ExpiresAt   *string  `json:"expires_at"`
		Scopes      []string `json:"scopes"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		t.Fatalf("GET %s in the browser: not JSON (%v):\n%s", tokenPath, err, snippet(body))
	}
	// The dev fake for GitHub is a GitHub App (fakeprovider.GitHub), whose
	// tokens carry no OAuth scopes; other providers' name repository access.
	wantRepoScope := p != "github"
	if tok.Provider != p || tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") || slices.Contains(tok.Scopes, "repo") != wantRepoScope {
		t.Errorf("token JSON %s: want provider %s, an access token, token_type bearer, scopes with repo: %v", body, p, wantRepoScope)
	}
	if tok.ExpiresAt != nil {
		if exp, err := time.Parse(time.RFC3339, *tok.ExpiresAt); err != nil || !exp.After(time.Now()) {
			t.Errorf("token expires_at %q: want a future RFC 3339 time (%v)", *tok.ExpiresAt, err)
		}
	}
	t.Logf("token JSON: provider=%s token_type=%s expires_at=%v scopes=%v access_token=%d bytes",
		tok.Provider, tok.TokenType, deref(tok.ExpiresAt), tok.Scopes, len(tok.AccessToken))
	cookie := b.sessionCookie("after connecting")
	resp := plainRequest(t, dev.base+tokenPath, cookie.Value)
	var plain struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&plain); resp.StatusCode != 200 || err != nil || plain.AccessToken != tok.AccessToken {
		t.Errorf("GET %s from a plain client: %d (%v), token equal to the browser's: %v", tokenPath, resp.StatusCode, err, plain.AccessToken == tok.AccessToken)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("GET %s: Cache-Control %q, want no-store", tokenPath, cc)
	}

	// 5. Disconnect asks first (a GET changes nothing), warning about ArgoCD.
	b.do("open the Integrations page again", chromedp.Navigate(page))
	b.waitPage("the Integrations page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/integrations"
	})
	b.do("click Disconnect", chromedp.Click(chromedp.CSS(`#card-`+p+` a.button.disconnect`)))
	st = b.waitPage("the disconnect confirmation page", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/integrations/"+p+"/disconnect"
	})
	cf := b.disconnectPage()
	if !cf.Main || !strings.Contains(cf.Text, "ArgoCD") || !strings.EqualFold(cf.Method, "post") ||
		cf.Action != "/integrations/"+p+"/disconnect" || !cf.CSRF || !cf.Button || cf.ButtonType != "submit" {
		t.Errorf("disconnect confirmation page: %+v\n%s", cf, snippet(st.HTML))
	}
	if code, _ := plainGet(t, dev.base+tokenPath, b.sessionCookie("on the confirmation page").Value); code != 200 {
		t.Errorf("GET %s while the confirmation page is open: %d, want 200 (opening it must not disconnect)", tokenPath, code)
	}

	// 6. Confirm: 303 back to the page, not connected, the revocation noted.
	b.do("confirm disconnect", chromedp.Click(chromedp.CSS(`#confirm-disconnect`)))
	st = b.waitPage("the Integrations page after disconnecting", func(st pageState, u *url.URL) bool {
		return u.Host == dev.host && u.Path == "/integrations" && strings.HasPrefix(u.Query().Get("notice"), "disconnected")
	})
	b.wantHop("POST", dev.base+"/integrations/"+p+"/disconnect", 303, "")
	if code := st.url(t).Query().Get("notice"); code != "disconnected_revoked" {
		t.Errorf("after disconnecting the URL carries notice=%q, want disconnected_revoked", code)
	}
	ip = b.integrationsPage()
	if ip.Notice != integrationsRevoked {
		t.Errorf("after disconnecting the notice reads %q (class %q), want it to mention the revocation", ip.Notice, ip.NoticeClass)
	}
	gh = ip.card(t, p)
	if gh.State != "not_connected" || gh.ConnectHref != "/integrations/"+p+"/connect" || gh.DisconnectHref != "" || gh.Account != "" {
		t.Errorf("after disconnecting the %s card is %+v; want not_connected with a Connect button", p, gh)
	}
	b.screenshot(filepath.Join(artifacts, "integrations-disconnected.png"))

	// 7. The token is gone: 404 provider_not_connected. A browser
	// navigation asks for HTML, so it gets Arbor's error page
	// (httperr.WantsHTML) with that code; a plain client gets the JSON.
	code, body, arborErr = b.openDocument(tokenPath)
	if code != http.StatusNotFound || arborErr != "provider_not_connected" {
		t.Errorf("GET %s in the browser after disconnecting: %d, arbor-error %q; want 404 provider_not_connected\n%s", tokenPath, code, arborErr, snippet(body))
	}
	resp = plainRequest(t, dev.base+tokenPath, b.sessionCookie("after disconnecting").Value)
	var apiErr struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&apiErr); resp.StatusCode != http.StatusNotFound || err != nil || apiErr.Error != "provider_not_connected" {
		t.Errorf("GET %s from a plain client after disconnecting: %d error %q (%v); want 404 {\"error\":\"provider_not_connected\"}", tokenPath, resp.StatusCode, apiErr.Error, err)
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

type integrationCard struct {
	ID             string `json:"id"`
	Provider       string `json:"provider"`
	State          string `json:"state"`
	Title          string `json:"title"`
	Account        string `json:"account"`
	ConnectHref    string `json:"connectHref"`
	ConnectText    string `json:"connectText"`
	DisconnectHref string `json:"disconnectHref"`
}

type integrationsPage struct {
	Found       bool              `json:"found"`
	Notice      string            `json:"notice"`
	NoticeClass string            `json:"noticeClass"`
	Cards       []integrationCard `json:"cards"`
}

func (ip integrationsPage) card(t *testing.T, provider string) integrationCard {
	t.Helper()
	for _, c := range ip.Cards {
		if c.Provider == provider {
			return c
		}
	}
	t.Fatalf("the Integrations page has no %s card: %+v", provider, ip)
	return integrationCard{}
}

func (b *browserTab) integrationsPage() integrationsPage {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[integrationsPage](`(() => {
		const q = (s) => document.querySelector(s);
		const text = (e) => e ? e.textContent.trim() : '';
		const attr = (e, a) => e ? (e.getAttribute(a) || '') : '';
		const notice = q('#notice');
		return {
			found: !!q('main#integrations'),
			notice: text(notice),
			noticeClass: notice ? notice.className : '',
			cards: Array.from(document.querySelectorAll('section.integration'), (s) => {
				const connect = s.querySelector('a.button.connect');
				return {
					id: s.id,
					provider: attr(s, 'data-provider'),
					state: attr(s, 'data-state'),
					title: text(s.querySelector('h2')),
					account: text(s.querySelector('strong.account')),
					connectHref: attr(connect, 'href'),
					connectText: text(connect),
					disconnectHref: attr(s.querySelector('a.button.disconnect'), 'href'),
				};
			}),
		};
	})()`))
	if err != nil {
		b.t.Fatalf("reading the Integrations page: %v", err)
	}
	if !v.Found {
		b.t.Fatalf("no main#integrations on the page")
	}
	return v
}

type disconnectPage struct {
	Main       bool   `json:"main"`
	Text       string `json:"text"`
	Method     string `json:"method"`
	Action     string `json:"action"`
	CSRF       bool   `json:"csrf"`
	Button     bool   `json:"button"`
	ButtonType string `json:"buttonType"`
}

func (b *browserTab) disconnectPage() disconnectPage {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[disconnectPage](`(() => {
		const main = document.querySelector('main.card#disconnect');
		const f = document.querySelector('form#disconnect-form');
		const btn = f ? f.querySelector('button#confirm-disconnect') : null;
		return {
			main: !!main,
			text: main ? main.textContent : '',
			method: f ? (f.getAttribute('method') || '') : '',
			action: f ? (f.getAttribute('action') || '') : '',
			csrf: !!f && Array.from(f.querySelectorAll('input[type="hidden"]')).some((i) => /csrf/i.test(i.name) && i.value !== ''),
			button: !!btn,
			buttonType: btn ? (btn.getAttribute('type') || '') : '',
		};
	})()`))
	if err != nil {
		b.t.Fatalf("reading the disconnect page: %v", err)
	}
	return v
}

// openDocument navigates the tab to path on Arbor (a JSON API) and returns
// the document's status, its text and, on Arbor's HTML error page, the
// error code (data-error); the caller decides whether that error is the
// expected one.
func (b *browserTab) openDocument(path string) (status int64, text, arborError string) {
	b.t.Helper()
	target := b.dev.base + path
	b.do("open "+path, chromedp.Navigate(target))
	type doc struct {
		Href       string `json:"href"`
		Ready      string `json:"ready"`
		ArborError string `json:"arborError"`
		Text       string `json:"text"`
	}
	var d doc
	for deadline := time.Now().Add(10 * time.Second); ; {
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[doc](`(() => {
			const err = document.querySelector('.arbor-error');
			// Chromium shows JSON as text in a <pre> (and may add a
			// pretty-print control beside it).
			const pre = document.querySelector('body > pre');
			return {
				href: location.href,
				ready: document.readyState,
				arborError: err ? (err.getAttribute('data-error') || '(no data-error)') : '',
				text: pre ? pre.textContent : (document.body ? document.body.innerText : ''),
			};
		})()`))
		if err == nil && v.Ready == "complete" && v.Href == target {
			d = v
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("open %s: the document did not load (last %+v, %v)\nnavigation:\n%s", path, v, err, b.navigation())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return b.status(target), d.Text, d.ArborError
}
