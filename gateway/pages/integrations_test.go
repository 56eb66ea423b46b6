package pages_test

// End-to-end tests of the Integrations page (and the provider API behind
// it: gateway/api's providers_test.go) through
// the whole of Arbor as `arbor serve` builds it (app/apptest): real Fiber
// on loopback, bbolt, the built-in plugins and the fake providers.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/connections"
)

func getJSON(t *testing.T, b *apptest.Browser, path string, into any) *apptest.Response {
	t.Helper()
	res := b.Get(path)
	if into != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(res.Body), into); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, res.Body)
		}
	}
	return res
}

type tokenJSON struct {
	Provider    string  `json:"provider"`
	AccessToken string  `json:"access_token"`
	ExpiresAt   *string `json:"expires_at"`
}

func TestIntegrationsConnectUseDisconnect(t *testing.T) {
	e := apptest.New(t)
	b := e.Browser()
	b.MustSignIn("google")
	// Git providers only: Google signs in but hosts no repositories.
	if got := apptest.IntegrationCards(t, b); len(got) != 3 || got["github"] != "not_connected" || got["gitlab"] != "not_connected" || got["bitbucket"] != "not_connected" {
		t.Fatalf("cards before connecting: %v", got)
	}
	// Connect asks for the repository scopes.
	res := b.Get("/integrations/github/connect")
	au, _ := url.Parse(res.Location())
	if !strings.Contains(au.Query().Get("scope"), "repo") || au.Query().Get("redirect_uri") != e.PublicURL+"/auth/callback/github" {
		t.Fatalf("connect authorization URL %s", res.Location())
	}
	res = b.Get(b.Approve(res.Location(), ""))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("connect callback: %d %s", res.StatusCode, res.Body)
	}
	page := b.Get("/integrations").Body
	if apptest.IntegrationCards(t, b)["github"] != "active" || !strings.Contains(page, `class="account">octocat<`) {
		t.Fatalf("after connecting:\n%s", page)
	}

	var list struct{ Providers []connections.Status }
	getJSON(t, b, "/api/providers", &list)
	if len(list.Providers) != 3 || !list.Providers[1].Connected || list.Providers[1].AccountLogin != "octocat" {
		t.Fatalf("/api/providers: %+v", list)
	}
	var tok tokenJSON
	res = getJSON(t, b, "/api/providers/github/token", &tok)
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-store" || tok.ExpiresAt == nil || !e.Fakes.Fakes["github"].ValidAccessToken(tok.AccessToken) {
		t.Fatalf("token: %d %+v", res.StatusCode, res.Header)
	}
	// Repositories, paginated through the plugin.
	var page1, page2 struct {
		Repos []struct {
			FullName string `json:"full_name"`
		}
		NextCursor string `json:"next_cursor"`
	}
	getJSON(t, b, "/api/providers/github/repos?per_page=5", &page1)
	if len(page1.Repos) != 5 || page1.NextCursor == "" {
		t.Fatalf("repos page 1: %+v", page1)
	}
	getJSON(t, b, "/api/providers/github/repos?per_page=5&cursor="+url.QueryEscape(page1.NextCursor), &page2)
	if len(page2.Repos) != 5 || page2.Repos[0].FullName == page1.Repos[0].FullName {
		t.Fatalf("repos page 2: %+v", page2)
	}
	if res := b.Get("/api/providers/github/repos?per_page=1000"); res.StatusCode != 400 || apptest.ErrorCode(res.Body) != "bad_per_page" {
		t.Fatalf("per_page=1000: %d %s", res.StatusCode, res.Body)
	}

	// Disconnect: a confirmation that warns about ArgoCD, a CSRF-checked
	// form, a revocation at the provider.
	confirm := b.Get("/integrations/github/disconnect")
	if !strings.Contains(confirm.Body, "ArgoCD") {
		t.Fatalf("confirmation page:\n%s", confirm.Body)
	}
	if res := b.Do(http.MethodPost, "/integrations/github/disconnect", url.Values{"csrf": {"nope"}}); res.StatusCode != 403 {
		t.Fatalf("disconnect without CSRF: %d", res.StatusCode)
	}
	csrf := apptest.CSRFRE.FindStringSubmatch(confirm.Body)[1]
	res = b.Do(http.MethodPost, "/integrations/github/disconnect", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect: %d %s", res.StatusCode, res.Body)
	}
	if !strings.HasSuffix(res.Location(), "/integrations?notice=disconnected_revoked") {
		t.Fatalf("disconnect redirects to %q", res.Location())
	}
	notice := b.Get(res.Location()).Body
	if !strings.Contains(notice, "revoked at the provider") || apptest.IntegrationCards(t, b)["github"] != "not_connected" {
		t.Fatalf("after disconnecting:\n%s", notice)
	}
	if e.Fakes.Fakes["github"].ValidAccessToken(tok.AccessToken) || len(e.Fakes.Fakes["github"].CallsTo(fakeprovider.EndpointRevoke)) != 1 {
		t.Fatal("the grant was not revoked at the fake")
	}
	if res := b.Get("/api/providers/github/token"); res.StatusCode != 404 || apptest.ErrorCode(res.Body) != connections.CodeNotConnected {
		t.Fatalf("token after disconnect: %d %s", res.StatusCode, res.Body)
	}
	// The events reach the receiver (connections.webhook_url) signed.
	var events []string
	for _, ev := range e.Webhooks.WaitFor(2) {
		events = append(events, ev.Type+":"+ev.Provider)
	}
	if strings.Join(events, ",") != "connection.connected:github,connection.disconnected:github" {
		t.Fatalf("events: %v", events)
	}
	audit, _ := e.App.Store().ListAudit(t.Context(), data.AuditQuery{})
	var actions []string
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "connection.") {
			actions = append(actions, a.Action+"/"+a.Outcome)
		}
	}
	if strings.Join(actions, ",") != "connection.connect/ok,connection.disconnect/revoked" {
		t.Fatalf("audit: %v", actions)
	}
}

func TestIntegrationsCardShowsScopesAsText(t *testing.T) {
	// A GitHub OAuth app: its tokens carry scopes (a GitHub App's carry
	// none, so its card shows none).
	e := apptest.New(t, apptest.EditFake(func(name string, c *fakeprovider.Config) {
		if name == "github" {
			o := fakeprovider.GitHubOAuthApp()
			o.Name, o.RedirectURIs = c.Name, c.RedirectURIs
			*c = o
		}
	}))
	b := e.Browser()
	b.MustSignIn("github")
	apptest.ConnectProvider(t, b, "github")
	if page := b.Get("/integrations").Body; !strings.Contains(page, `<dd class="scopes">repo read:user user:email</dd>`) {
		t.Fatalf("scopes on the card:\n%s", page)
	}
}

var noticeRE = regexp.MustCompile(`(?s)<p class="notice[^"]*" id="notice">(.*?)</p>`)

// Notices on the Integrations page come from fixed codes: text in the
// query never reaches the page, and an unknown code shows nothing.
func TestIntegrationsNoticesAreArborsOwn(t *testing.T) {
	e := apptest.New(t)
	b := e.Browser()
	b.MustSignIn("github")
	const bait = "Your account is suspended. Call +1 555 0100 now"
	for _, tc := range []struct{ query, want string }{
		{"", ""},
		{"?notice=connected", "Connected."},
		{"?notice=disconnected", "Disconnected."},
		{"?notice=disconnected_revoked", "Disconnected, and the access was revoked at the provider."},
		{"?notice=disconnected_revoke_pending", "Disconnected in Trellis. The provider could not be reached to revoke the access; Arbor keeps trying in the background."},
		// The old free-text form, and hostile codes: nothing.
		{"?disconnected=github&message=" + url.QueryEscape(bait), ""},
		{"?connected=github&message=" + url.QueryEscape(bait), ""},
		{"?notice=" + url.QueryEscape(bait), ""},
		{"?notice=Connected.", ""},
		{"?notice=connected%00", ""},
		{"?notice=disconnected_", ""},
		{"?notice=connected&message=" + url.QueryEscape(bait), "Connected."},
	} {
		res := b.Get("/integrations" + tc.query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /integrations%s: %d\n%s", tc.query, res.StatusCode, res.Body)
		}
		got := ""
		if m := noticeRE.FindStringSubmatch(res.Body); m != nil {
			got = m[1]
		}
		if got != tc.want || strings.Contains(res.Body, "suspended") {
			t.Fatalf("GET /integrations%s shows notice %q, want %q", tc.query, got, tc.want)
		}
	}
}
