package fakeprovider_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// specFake starts the fake a Spec describes, with the test callback.
func specFake(t *testing.T, s fakeprovider.Spec) *fakeprovider.Provider {
	t.Helper()
	cfg, err := s.Config()
	if err != nil {
		t.Fatal(err)
	}
	return start(t, cfg)
}

// specCode approves an authorization request (no PKCE) for login and
// returns the code.
func specCode(t *testing.T, p *fakeprovider.Provider, login string) string {
	t.Helper()
	q := url.Values{"client_id": {p.Config().ClientID}, "redirect_uri": {callback}, "response_type": {"code"}, "state": {"s"}}
	code := authorize(t, p.Endpoints().AuthURL+"?"+q.Encode(), login).Get("code")
	if code == "" {
		t.Fatal("no code")
	}
	return code
}

// tokenPost posts to the token endpoint with the given query, form body
// and, if basic, the client's HTTP Basic credentials; it returns the status
// and the decoded JSON answer.
func tokenPost(t *testing.T, p *fakeprovider.Provider, query, body url.Values, basic bool) (int, map[string]any) {
	t.Helper()
	u := p.Endpoints().TokenURL
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var creds []string
	if basic {
		creds = []string{p.Config().ClientID, p.Config().ClientSecret}
	}
	resp, b := postForm(t, u, body, creds, nil)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("token answer is not JSON: %v: %s", err, b)
	}
	return resp.StatusCode, m
}

// giteeLogin exchanges a code as Gitee documents it and returns the
// token answer.
func giteeLogin(t *testing.T, p *fakeprovider.Provider) map[string]any {
	t.Helper()
	status, m := tokenPost(t, p,
		url.Values{"grant_type": {"authorization_code"}, "code": {specCode(t, p, "")}, "client_id": {p.Config().ClientID}, "redirect_uri": {callback}},
		url.Values{"client_secret": {p.Config().ClientSecret}}, false)
	if status != http.StatusOK || m["refresh_token"] == nil {
		t.Fatalf("Gitee-style exchange: %d %v", status, m)
	}
	return m
}

// Each grant takes its parameters and client credentials where the Spec
// says, and a request that puts them elsewhere gets an OAuth error saying
// where they go: Gitee's exchange (parameters in the query, the secret in
// the body) and refresh (parameters in the query, no client credentials).
func TestSpecGrantPlacementAndClientAuth(t *testing.T) {
	p := specFake(t, giteeSpec())
	id, secret := p.Config().ClientID, p.Config().ClientSecret
	type req struct {
		query, body url.Values
		basic       bool
	}
	exchange := func(code string, where string, withSecret string, basic bool) req {
		params := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {id}, "redirect_uri": {callback}}
		r := req{query: url.Values{}, body: url.Values{}, basic: basic}
		if where == "query" {
			r.query = params
		} else {
			r.body = params
		}
		switch withSecret {
		case "body":
			r.body.Set("client_secret", secret)
		case "query":
			r.query.Set("client_secret", secret)
		}
		return r
	}
	refresh := func(rt string, where string, withSecret string, basic bool) req {
		params := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		r := req{query: url.Values{}, body: url.Values{}, basic: basic}
		if where == "query" {
			r.query = params
		} else {
			r.body = params
		}
		if withSecret == "body" {
			r.body.Set("client_id", id)
			r.body.Set("client_secret", secret)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		build  func(code, rt string) req
		status int
		err    string // OAuth error code; "" = success
		desc   string
	}{
		{"exchange as documented", func(c, _ string) req { return exchange(c, "query", "body", false) }, 200, "", ""},
		{"exchange in the body", func(c, _ string) req { return exchange(c, "body", "body", false) }, 400, "invalid_request",
			"takes its parameters in the query"},
		{"exchange with the secret in the URL", func(c, _ string) req { return exchange(c, "query", "query", false) }, 400, "invalid_request",
			"must not be sent in the URL"},
		{"exchange without the secret", func(c, _ string) req { return exchange(c, "query", "", false) }, 401, "invalid_client", ""},
		{"exchange with Basic", func(c, _ string) req { return exchange(c, "query", "", true) }, 401, "invalid_client", ""},
		{"refresh as documented", func(_, rt string) req { return refresh(rt, "query", "", false) }, 200, "", ""},
		{"refresh in the body", func(_, rt string) req { return refresh(rt, "body", "", false) }, 400, "invalid_request",
			"takes its parameters in the query, not in the request body (grant_type)"},
		{"refresh with Basic", func(_, rt string) req { return refresh(rt, "query", "", true) }, 400, "invalid_request",
			"takes no client authentication"},
		{"refresh with body credentials", func(_, rt string) req { return refresh(rt, "query", "body", false) }, 400, "invalid_request",
			"takes no client authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := giteeLogin(t, p)["refresh_token"].(string)
			r := tc.build(specCode(t, p, ""), rt)
			status, m := tokenPost(t, p, r.query, r.body, r.basic)
			if status != tc.status || (tc.err == "") != (m["access_token"] != nil) || m["error"] != nilIfEmpty(tc.err) {
				t.Fatalf("status %d %v, want %d %q", status, m, tc.status, tc.err)
			}
			if d, _ := m["error_description"].(string); !strings.Contains(d, tc.desc) {
				t.Fatalf("error_description %q, want %q", d, tc.desc)
			}
		})
	}
	// The refresh token in the query string is redacted in Calls.
	for _, c := range p.CallsTo(fakeprovider.EndpointToken) {
		if strings.Contains(c.Query, "refresh_token=") && !strings.Contains(c.Query, "refresh_token=REDACTED") {
			t.Fatalf("a refresh token in Calls: %s", c.Query)
		}
		if c.GrantType == "refresh_token" && c.Status == 200 && c.ClientAuth != "none" {
			t.Fatalf("a documented refresh recorded with client auth %q", c.ClientAuth)
		}
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// A grant whose rule says Basic refuses body credentials as Bitbucket's
// preset does, while the other grant (no rule) keeps the default.
func TestSpecGrantBasicOnly(t *testing.T) {
	s := fakeprovider.Spec{Tokens: fakeprovider.SpecTokens{Refresh: true},
		Grants: map[string]fakeprovider.SpecGrant{"refresh_token": {ClientAuth: "basic"}}}
	p := specFake(t, s)
	id, secret := p.Config().ClientID, p.Config().ClientSecret
	status, m := tokenPost(t, p, nil, url.Values{"grant_type": {"authorization_code"}, "code": {specCode(t, p, "")},
		"redirect_uri": {callback}, "client_id": {id}, "client_secret": {secret}}, false)
	if status != 200 {
		t.Fatalf("exchange with body credentials (no rule): %d %v", status, m)
	}
	rt := m["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	body := url.Values{"client_id": {id}, "client_secret": {secret}}
	for k, v := range refresh {
		body[k] = v
	}
	if status, m := tokenPost(t, p, nil, body, false); status != 401 || m["error"] != "invalid_client" {
		t.Fatalf("refresh with body credentials under a basic rule: %d %v", status, m)
	}
	if status, m := tokenPost(t, p, refresh, nil, true); status != 400 || m["error"] != "invalid_request" {
		t.Fatalf("refresh in the query under a body-placement rule: %d %v", status, m)
	}
	if status, m := tokenPost(t, p, nil, refresh, true); status != 200 {
		t.Fatalf("refresh with Basic: %d %v", status, m)
	}
}

// The API takes the access token only where the Spec says; elsewhere the
// request is unauthenticated (401 "No access token.").
func TestSpecAPITokenPlacement(t *testing.T) {
	for _, tc := range []struct {
		token               []string
		bearer, tok, querys int // statuses for each placement
	}{
		{nil, 200, 401, 401},
		{[]string{"bearer"}, 200, 401, 401},
		{[]string{"token"}, 401, 200, 401},
		{[]string{"query"}, 401, 401, 200},
		{[]string{"bearer", "query"}, 200, 401, 200},
		{[]string{"Bearer", "token"}, 200, 200, 401},
	} {
		t.Run(strings.Join(tc.token, "+"), func(t *testing.T) {
			p := specFake(t, fakeprovider.Spec{API: fakeprovider.SpecAPI{Token: tc.token}})
			status, m := tokenPost(t, p, nil, url.Values{"grant_type": {"authorization_code"}, "code": {specCode(t, p, "")},
				"redirect_uri": {callback}}, true)
			if status != 200 {
				t.Fatalf("exchange: %d %v", status, m)
			}
			at := m["access_token"].(string)
			u := p.Endpoints().UserURL
			for _, v := range []struct {
				name, url, auth string
				want            int
			}{
				{"Bearer header", u, "Bearer " + at, tc.bearer},
				{"token header", u, "token " + at, tc.tok},
				{"access_token query", u + "?access_token=" + url.QueryEscape(at), "", tc.querys},
			} {
				status, _, body := apiGet(t, v.url, v.auth)
				if status != v.want {
					t.Errorf("%s: status %d %v, want %d", v.name, status, body, v.want)
				}
				if status == 401 && field(body, "error_description") != "No access token." {
					t.Errorf("%s: %v, want the missing-token error", v.name, body)
				}
			}
		})
	}
}

// Lists page in the Spec's style under the Spec's names: the user has 45
// repositories, asked for page 2 of 20.
func TestSpecPaging(t *testing.T) {
	for _, tc := range []struct {
		name    string
		paging  fakeprovider.SpecPaging
		query   string
		headers map[string]string // "" = absent
		fields  []string          // body object fields (body-next), else a bare array
		items   int
	}{
		{"link", fakeprovider.SpecPaging{}, "page=2&per_page=20",
			map[string]string{"Link": `rel="next"`, "X-Total-Count": ""}, nil, 20},
		{"link with a count header", fakeprovider.SpecPaging{TotalCountHeader: "X-Total"}, "page=2&per_page=20",
			map[string]string{"Link": `rel="next"`, "X-Total": "45"}, nil, 20},
		{"x-next-page renamed", fakeprovider.SpecPaging{Style: "x-next-page", NextPageHeader: "X-Next", TotalPagesHeader: "X-Pages"},
			"page=2&per_page=20", map[string]string{"X-Next": "3", "X-Pages": "3", "X-Total": "45", "X-Next-Page": ""}, nil, 20},
		{"total-pages as Gitee", fakeprovider.SpecPaging{Style: "total-pages", TotalPagesHeader: "total_page", TotalCountHeader: "total_count"},
			"page=2&per_page=20", map[string]string{"Total_page": "3", "Total_count": "45", "Link": ""}, nil, 20},
		{"total-pages default names", fakeprovider.SpecPaging{Style: "total-pages"}, "page=3&per_page=20",
			map[string]string{"X-Total-Pages": "3", "X-Total": "45"}, nil, 5},
		{"body-next renamed", fakeprovider.SpecPaging{Style: "body-next", NextField: "next_url", ItemsField: "items"},
			"page=2&pagelen=20", map[string]string{"Link": ""}, []string{"next_url", "items"}, 20},
		{"renamed parameters", fakeprovider.SpecPaging{Page: "p", PerPage: "limit", Size: 10}, "p=2&limit=20",
			map[string]string{"Link": "p=3"}, nil, 20},
		{"default size", fakeprovider.SpecPaging{Style: "total-pages", Size: 40}, "", map[string]string{"X-Total-Pages": "2"}, nil, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := specFake(t, fakeprovider.Spec{Paging: tc.paging, Users: []fakeprovider.SpecUser{{ID: 5, Login: "many", Repos: 45}}})
			status, m := tokenPost(t, p, nil, url.Values{"grant_type": {"authorization_code"}, "code": {specCode(t, p, "")},
				"redirect_uri": {callback}}, true)
			if status != 200 {
				t.Fatalf("exchange: %d %v", status, m)
			}
			u := p.Endpoints().ReposURL
			if tc.query != "" {
				u += "?" + tc.query
			}
			status, h, body := apiGet(t, u, "Bearer "+m["access_token"].(string))
			if status != 200 {
				t.Fatalf("repos: %d %v", status, body)
			}
			for k, want := range tc.headers {
				got := h.Get(k)
				if (want == "") != (got == "") || !strings.Contains(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			items, _ := body.([]any)
			if tc.fields != nil {
				obj, _ := body.(map[string]any)
				if next, _ := obj[tc.fields[0]].(string); !strings.Contains(next, "page=3") {
					t.Errorf("%s = %v, want the next page's URL", tc.fields[0], obj[tc.fields[0]])
				}
				items, _ = obj[tc.fields[1]].([]any)
			}
			if len(items) != tc.items {
				t.Errorf("%d items, want %d: %v", len(items), tc.items, body)
			}
		})
	}
}

// The Gitee description's objects: e-mails as {email, state, scope}, the
// display name as "name", repositories without clone_url; the API call
// with the token in the query.
func TestSpecGiteeShapes(t *testing.T) {
	p := specFake(t, giteeSpec())
	at := giteeLogin(t, p)["access_token"].(string)
	e := p.Endpoints()
	get := func(u string) (http.Header, any) {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		status, h, body := apiGet(t, u+sep+"access_token="+url.QueryEscape(at), "")
		if status != 200 {
			t.Fatalf("GET %s: %d %v", u, status, body)
		}
		return h, body
	}
	_, user := get(e.UserURL)
	if field(user, "name") != "Ann Gitee" || field(user, "full_name") != nil || field(user, "login") != "gitee-ann" || field(user, "id") != 4001.0 {
		t.Errorf("user %v", user)
	}
	_, emails := get(e.EmailsURL)
	want := []any{
		map[string]any{"email": "ann@example.com", "state": "confirmed", "scope": []any{"primary", "notified"}},
		map[string]any{"email": "ann@example.net", "state": "unconfirmed", "scope": []any{"notified"}},
	}
	if !reflect.DeepEqual(emails, want) {
		t.Errorf("emails %v, want %v", emails, want)
	}
	h, repos := get(e.ReposURL + "?page=3")
	list, _ := repos.([]any)
	if len(list) != 5 || h.Get("total_page") != "3" || h.Get("total_count") != "45" {
		t.Fatalf("page 3: %d repositories, total_page %q, total_count %q", len(list), h.Get("total_page"), h.Get("total_count"))
	}
	r := list[0]
	if field(r, "clone_url") != nil || field(r, "html_url") == nil || field(r, "owner", "login") != "gitee-ann" || field(r, "full_name") != "gitee-ann/repo-041" {
		t.Errorf("repository %v", r)
	}
}
