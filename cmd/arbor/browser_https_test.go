package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vintner/arbor/gateway/edge/https/httpstest"
	"github.com/vintner/arbor/plugins/builtin/fakes"
)

// Headless Chromium signs in through the real `arbor serve` terminating TLS
// with certificate files (issue 18): the fake GitHub's consent page, back
// over https to the page first asked for, proxied with Arbor's identity.
// Both __Host- cookies (the sign-in's __Host-arbor_flow, then
// __Host-arbor_session) are Secure, HttpOnly, SameSite=Lax, Path=/ and
// host-only; every Arbor answer carries Strict-Transport-Security.
//
// Chromium trusts the test certificate through
// --ignore-certificate-errors-spki-list, which accepts a chain that does
// not validate only when one of its certificates has one of the listed
// SHA-256 SPKI fingerprints (RFC 7469 section 2.4), and only together with
// --user-data-dir, which startBrowser sets
// (https://source.chromium.org/chromium/chromium/src/+/main:services/network/public/cpp/network_switches.cc).
// It trusts exactly the server's key, for this browser only: installing the
// test CA into the system store (or an NSS database) would need root or a
// profile set-up, outlive the test, and trust everything the CA signs;
// --ignore-certificate-errors would switch certificate checks off
// altogether. That the checks stay on is shown first: a server with a
// certificate from the same CA but another key is refused.
func TestBrowserSignInOverHTTPS(t *testing.T) {
	chromium := findChromium(t) // skips on a developer machine without one, fails in CI
	e := newTestEnv(t)
	ca := httpstest.NewCA(t)
	pair := ca.Issue(t)
	certFile, keyFile := pair.Files(t, t.TempDir())
	spki := sha256.Sum256(pair.Leaf.RawSubjectPublicKeyInfo)

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>upstream</title><p id="who" data-login="%s" data-id="%s" data-proto="%s">%s</p>`,
			html.EscapeString(r.Header.Get("X-Arbor-User-Login")), html.EscapeString(r.Header.Get("X-Arbor-User-Id")),
			html.EscapeString(r.Header.Get("X-Forwarded-Proto")), html.EscapeString(r.URL.RequestURI()))
	}))
	defer upstream.Close()

	// The fakes accept exactly public_url + /auth/callback/{name}: the
	// address comes first.
	addr := freeAddr(t)
	base := "https://" + addr
	env, _ := e.withFakes(t, base, upstream.URL, fakes.Options{},
		"ARBOR_TLS_CERT_FILE="+certFile, "ARBOR_TLS_KEY_FILE="+keyFile)
	srv := launchServe(t, addr, env)
	// /readyz: the providers' plugins are loaded, so the sign-in page has
	// its buttons.
	srv.waitTLSPath(t, base+"/readyz", ca.Client())

	// A server with a certificate from the same CA for the same names, but
	// another key.
	decoyPair := ca.Issue(t)
	decoyCert, err := tls.X509KeyPair(decoyPair.CertPEM, decoyPair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	decoy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the decoy must not be reached")
	}))
	decoy.TLS = &tls.Config{Certificates: []tls.Certificate{decoyCert}}
	decoy.StartTLS()
	defer decoy.Close()

	browserCtx, chromiumOut, stopBrowser := startBrowser(t, chromium,
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	defer stopBrowser(t)
	defer func() {
		if t.Failed() {
			t.Logf("chromium output (D-Bus noise left out):\n%s", tail(withoutDBus(chromiumOut.String()), 4000))
		}
	}()
	b, closeTab := newBrowserTab(t, browserCtx, &devServer{base: base, host: addr, logs: srv.logs}, 90*time.Second)
	defer closeTab()

	// 1. Certificate checks are on: the decoy is refused.
	nctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	_, err = chromedp.Run(nctx, chromedp.NavigateResponse(decoy.URL+"/"))
	cancel()
	var loadErr *chromedp.LoadError
	if !errors.As(err, &loadErr) || !strings.HasPrefix(loadErr.ErrorText, "net::ERR_CERT_") {
		t.Fatalf("Chromium opened %s (a certificate of the test CA with another key): %v; want a net::ERR_CERT_ error", decoy.URL, err)
	}
	t.Logf("the other key's certificate is refused: %s", loadErr.ErrorText)

	// Every Arbor answer to a document request (redirects included), for
	// the headers and the TLS details.
	arborDocs := make(chan *network.Response, 64)
	keep := func(r *network.Response) {
		if r != nil && strings.HasPrefix(r.URL, base+"/") {
			select {
			case arborDocs <- r:
			default:
			}
		}
	}
	if err := chromedp.Listen(b.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if ev.Type == network.ResourceTypeDocument {
				keep(ev.RedirectResponse)
			}
		case *network.EventResponseReceived:
			if ev.Type == network.ResourceTypeDocument {
				keep(ev.Response)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}

	// 2. A deep link over https lands on the sign-in page.
	const deepPath, deepQuery = "/some/deep/path", "x=1"
	deep := base + deepPath + "?" + deepQuery
	b.do("open "+deep, chromedp.Navigate(deep))
	st := b.waitPage("the sign-in page", func(st pageState, u *url.URL) bool {
		return u.Scheme == "https" && u.Host == addr && u.Path == "/auth/sign-in"
	})
	if got := st.url(t).Query().Get("return_to"); got != deepPath+"?"+deepQuery {
		t.Fatalf("sign-in page %s: return_to=%q", st.Href, got)
	}
	b.wantHop("GET", deep, 302, "/auth/sign-in?return_to="+url.QueryEscape(deepPath+"?"+deepQuery))

	// 3. The fake GitHub (plain http on 127.0.0.1): on its consent page
	// Chromium holds the sign-in's binding cookie, __Host-arbor_flow.
	// Approve: back over https through the callback to the deep link,
	// proxied as the user.
	b.do("click github", chromedp.Click(chromedp.CSS(`a.provider-button[data-provider="github"]`)))
	st = b.waitPage("github's consent page", func(st pageState, u *url.URL) bool {
		return u.Host != addr && st.Approve
	})
	if st.FakeUser != "octocat" {
		t.Fatalf("consent page selects fake user %q, want octocat", st.FakeUser)
	}
	wantHostCookie(t, arborCookies(t, b, base), "__Host-arbor_flow", "on the consent page")
	b.do("approve sign-in", chromedp.Click(chromedp.CSS(`button[name="decision"][value="approve"]`)))
	st = b.waitPage("the upstream page after sign-in", func(st pageState, u *url.URL) bool {
		return u.Scheme == "https" && u.Host == addr && u.Path == deepPath
	})
	b.wantHop("GET", base+"/auth/callback/github", 302, deepPath+"?"+deepQuery)
	type who struct {
		Login, ID, Proto, URI string
	}
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[who](`(() => { const p = document.querySelector('#who');
		return p ? {Login: p.dataset.login, ID: p.dataset.id, Proto: p.dataset.proto, URI: p.textContent} : {}; })()`))
	if err != nil {
		t.Fatalf("reading the upstream page: %v", err)
	}
	if got.Login != "octocat" || !strings.HasPrefix(got.ID, "usr_") || got.Proto != "https" || got.URI != deepPath+"?"+deepQuery {
		t.Fatalf("the upstream saw %+v; want login octocat, an usr_ id, X-Forwarded-Proto https, %s?%s\n%s", got, deepPath, deepQuery, snippet(st.HTML))
	}

	// 4. The session cookie as Chromium holds it.
	session := wantHostCookie(t, arborCookies(t, b, base), "__Host-arbor_session", "after sign-in")
	// The cookie is the session: a client trusting the CA, with only it.
	req, _ := http.NewRequest(http.MethodGet, deep, nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	hres, err := ca.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hres.Body)
	hres.Body.Close()
	if hres.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-login="octocat"`) {
		t.Fatalf("GET %s with the browser's cookie: %d\n%s", deep, hres.StatusCode, snippet(string(body)))
	}

	// 5. Every Arbor answer the browser got (the redirect to sign-in, the
	// sign-in page, the callback's redirect, the proxied page) came over
	// TLS with the test certificate and carried HSTS.
	drain := func() []*network.Response {
		var rs []*network.Response
		for {
			select {
			case r := <-arborDocs:
				rs = append(rs, r)
			default:
				return rs
			}
		}
	}
	docs := drain()
	if len(docs) < 4 {
		t.Fatalf("saw %d document responses from Arbor; navigation:\n%s", len(docs), b.navigation())
	}
	sawUpstream, sawCallback := false, false
	for _, r := range docs {
		if hsts := headerOf(r.Headers, "Strict-Transport-Security"); hsts != "max-age=31536000" {
			t.Errorf("%s (%d): Strict-Transport-Security %q, want max-age=31536000", r.URL, r.Status, hsts)
		}
		d := r.SecurityDetails
		if d == nil || d.Issuer != "Arbor test CA" || !strings.HasPrefix(d.Protocol, "TLS 1.") {
			t.Errorf("%s: TLS details %+v; want the test CA's certificate over TLS 1.x", r.URL, d)
		}
		if strings.HasPrefix(r.URL, base+deepPath) && r.Status == 200 {
			sawUpstream = true
		}
		if r.URL == base+"/auth/callback/github" || strings.HasPrefix(r.URL, base+"/auth/callback/github?") {
			sawCallback = true
		}
	}
	if !sawUpstream || !sawCallback {
		t.Errorf("Arbor's document responses lack the callback (%v) or the proxied page (%v); navigation:\n%s", sawCallback, sawUpstream, b.navigation())
	}
	t.Logf("signed in over https as octocat (%s); %d Arbor documents, all with HSTS", got.ID, len(docs))
}

// waitTLSPath waits until target answers 200 through client.
func (s *server) waitTLSPath(t *testing.T, target string, client *http.Client) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute) // plugins compile slowly under -race on 2 cores
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			t.Fatalf("arbor serve exited early: %v\n%s", err, s.logs.String())
		default:
		}
		if res, err := client.Get(target); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("arbor serve: %s did not answer 200 within 3 minutes", target)
}

// header looks name up in Chromium's response headers, whatever its case.
func headerOf(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// arborCookies is what Chromium would send to base, by name.
func arborCookies(t *testing.T, b *browserTab, base string) map[string]*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	m := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		m[c.Name] = c
	}
	return m
}

// wantHostCookie checks that cookies hold name (a __Host- name) with the
// attributes Arbor gives its cookies over https, and no copy without the
// prefix, and returns it.
func wantHostCookie(t *testing.T, cookies map[string]*network.Cookie, name, when string) *network.Cookie {
	t.Helper()
	bare := strings.TrimPrefix(name, "__Host-")
	if c := cookies[bare]; c != nil {
		t.Errorf("%s: Chromium holds %s; over https the cookie must be %s", when, bare, name)
	}
	c := cookies[name]
	if c == nil {
		names := make([]string, 0, len(cookies))
		for n := range cookies {
			names = append(names, n)
		}
		t.Fatalf("%s: Chromium holds no %s for Arbor (it has %v)", when, name, names)
	}
	if !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Domain != "127.0.0.1" || c.Value == "" {
		t.Errorf("%s: cookie %s: Secure=%v HttpOnly=%v SameSite=%q Path=%q Domain=%q; want Secure, HttpOnly, Lax, /, host-only 127.0.0.1",
			when, c.Name, c.Secure, c.HTTPOnly, c.SameSite, c.Path, c.Domain)
	}
	return c
}
