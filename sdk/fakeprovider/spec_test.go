package fakeprovider_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// giteeSpec is the Gitee description of examples/fakes/gitee.yaml, in Go
// (this package cannot read YAML; sdk/plugintest checks the file).
func giteeSpec() fakeprovider.Spec {
	return fakeprovider.Spec{
		Name: "Gitee",
		Paths: fakeprovider.SpecPaths{Authorize: "/oauth/authorize", Token: "/oauth/token",
			User: "/api/v5/user", Emails: "/api/v5/emails", Repos: "/api/v5/user/repos"},
		Tokens: fakeprovider.SpecTokens{Type: "bearer", AccessLifetime: "24h", Refresh: true, Rotate: true, CreatedAt: true},
		Grants: map[string]fakeprovider.SpecGrant{
			"authorization_code": {Params: "query", ClientAuth: "body"},
			"refresh_token":      {Params: "query", ClientAuth: "none"},
		},
		API: fakeprovider.SpecAPI{Token: []string{"query"}},
		Paging: fakeprovider.SpecPaging{Style: "total-pages", TotalPagesHeader: "total_page", TotalCountHeader: "total_count",
			Size: 20, MaxSize: 100},
		Fields: fakeprovider.SpecFields{User: fakeprovider.FieldMap{"name": "name"}, Repo: fakeprovider.FieldMap{"clone_url": ""}},
		Emails: fakeprovider.SpecEmails{Style: "state-scope", PrimaryScopes: []string{"primary", "notified"}, OtherScopes: []string{"notified"}},
		Users: []fakeprovider.SpecUser{
			{ID: 4001, Login: "gitee-ann", Name: "Ann Gitee", Repos: 45, Emails: []fakeprovider.SpecEmail{
				{Address: "ann@example.com", Primary: true, Verified: true}, {Address: "ann@example.net"}}},
		},
	}
}

func TestSpecValidation(t *testing.T) {
	with := func(f func(*fakeprovider.Spec)) fakeprovider.Spec {
		s := giteeSpec()
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name  string
		spec  fakeprovider.Spec
		field string // "" = valid
		msg   string
	}{
		{"zero spec is the generic fake", fakeprovider.Spec{}, "", ""},
		{"generic written out", fakeprovider.GenericSpec(), "", ""},
		{"gitee", giteeSpec(), "", ""},
		{"token path missing", with(func(s *fakeprovider.Spec) { s.Paths.Token = "" }), "paths.token", "required"},
		{"path without slash", with(func(s *fakeprovider.Spec) { s.Paths.User = "api/v5/user" }), "paths.user", "starting with /"},
		{"path with query", with(func(s *fakeprovider.Spec) { s.Paths.Emails = "/emails?x=1" }), "paths.emails", "bare path"},
		{"bad lifetime", with(func(s *fakeprovider.Spec) { s.Tokens.AccessLifetime = "a day" }), "tokens.access_lifetime", "Go duration"},
		{"negative lifetime", with(func(s *fakeprovider.Spec) { s.Tokens.RefreshLifetime = "-1h" }), "tokens.refresh_lifetime", "positive"},
		{"rotate without refresh", with(func(s *fakeprovider.Spec) {
			s.Tokens.Refresh = false
			s.Grants = nil
		}), "tokens.rotate", "tokens.refresh: true"},
		{"refresh rule without refresh tokens", with(func(s *fakeprovider.Spec) { s.Tokens.Refresh, s.Tokens.Rotate = false, false }),
			"grants.refresh_token", "no refresh tokens"},
		{"unknown grant", with(func(s *fakeprovider.Spec) { s.Grants["password"] = fakeprovider.SpecGrant{} }), "grants.password", "unknown grant"},
		{"bad placement", with(func(s *fakeprovider.Spec) { s.Grants["refresh_token"] = fakeprovider.SpecGrant{Params: "header"} }),
			"grants.refresh_token.params", `"header": want body or query`},
		{"bad client auth", with(func(s *fakeprovider.Spec) { s.Grants["refresh_token"] = fakeprovider.SpecGrant{ClientAuth: "jwt"} }),
			"grants.refresh_token.client_auth", "want either, body, basic or none"},
		{"public code exchange", with(func(s *fakeprovider.Spec) {
			s.Grants["authorization_code"] = fakeprovider.SpecGrant{ClientAuth: "none"}
		}),
			"grants.authorization_code.client_auth", "must authenticate the client"},
		{"bad token placement", with(func(s *fakeprovider.Spec) { s.API.Token = []string{"query", "cookie"} }), "api.token[1]", `"cookie"`},
		{"bad paging style", with(func(s *fakeprovider.Spec) { s.Paging.Style = "cursor" }), "paging.style", "want link, x-next-page, total-pages or body-next"},
		{"header of another style", with(func(s *fakeprovider.Spec) { s.Paging.NextField = "next" }), "paging.next_field", `not used by paging style "total-pages"`},
		{"bad header name", with(func(s *fakeprovider.Spec) { s.Paging.TotalPagesHeader = "total page" }), "paging.total_pages_header", "not an HTTP header name"},
		{"bad page parameter", with(func(s *fakeprovider.Spec) { s.Paging.Page = "p&x" }), "paging.page", "not a query parameter name"},
		{"same page parameters", with(func(s *fakeprovider.Spec) { s.Paging.Page, s.Paging.PerPage = "p", "p" }), "paging.per_page", "also paging.page"},
		{"page size above max", with(func(s *fakeprovider.Spec) { s.Paging.Size = 200 }), "paging.size", "larger than paging.max_size"},
		{"unknown user field", with(func(s *fakeprovider.Spec) { s.Fields.User["nickname"] = "nick" }), "fields.user", `"nickname" is not a field`},
		{"bad dotted path", with(func(s *fakeprovider.Spec) { s.Fields.Repo["owner_login"] = "owner..login" }), "fields.repo", "dotted path"},
		{"login left out", with(func(s *fakeprovider.Spec) { s.Fields.User["login"] = "" }), "fields.user.login", "cannot be left out"},
		{"bad e-mail style", with(func(s *fakeprovider.Spec) { s.Emails.Style = "list" }), "emails.style", "want flags or state-scope"},
		{"flags field in state-scope", with(func(s *fakeprovider.Spec) { s.Emails.Verified = "verified" }), "emails.primary", "not used by the state-scope style"},
		{"state field in flags", fakeprovider.Spec{Emails: fakeprovider.SpecEmails{State: "state"}}, "emails.state", "not used by the flags style"},
		{"empty primary scopes", with(func(s *fakeprovider.Spec) { s.Emails.PrimaryScopes = []string{} }), "emails.primary_scopes", "empty"},
		{"user without login", with(func(s *fakeprovider.Spec) { s.Users[0].Login = "" }), "users[0].login", "required"},
		{"duplicate login", with(func(s *fakeprovider.Spec) {
			s.Users = append(s.Users, fakeprovider.SpecUser{ID: 9, Login: "Gitee-Ann"})
		}), "users[1].login", "taken"},
		{"duplicate id", with(func(s *fakeprovider.Spec) { s.Users = append(s.Users, fakeprovider.SpecUser{ID: 4001, Login: "x"}) }), "users[1].id", "taken"},
		{"two primaries", with(func(s *fakeprovider.Spec) { s.Users[0].Emails[1].Primary = true }), "users[0].emails", "2 addresses are primary"},
		{"membership of nobody", with(func(s *fakeprovider.Spec) { s.Memberships = map[string][]string{"zed": {"red"}} }), "memberships.zed", "no such user"},
		{"empty group", with(func(s *fakeprovider.Spec) { s.Memberships = map[string][]string{"gitee-ann": {""}} }), "memberships.gitee-ann", "empty group"},
		{"bad address", with(func(s *fakeprovider.Spec) { s.Users[0].Emails[1].Address = "ann" }), "users[0].emails[1].address", "not an e-mail address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.spec.Config()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid spec refused: %v", err)
				}
				return
			}
			var se *fakeprovider.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *SpecError for %s", err, err, tc.field)
			}
			if se.Field != tc.field || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.field+": ") {
				t.Fatalf("error %q (field %q), want field %q and %q", err, se.Field, tc.field, tc.msg)
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	b, err := json.Marshal(giteeSpec())
	if err != nil {
		t.Fatal(err)
	}
	s, err := fakeprovider.ParseSpec(b)
	if err != nil {
		t.Fatalf("round trip: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(s, giteeSpec()) {
		t.Fatalf("round trip changed the spec:\n%+v\n%+v", s, giteeSpec())
	}
	for _, tc := range []struct{ in, want string }{
		{`{"paths": {"token": "/t"}, "pagination": "link"}`, `unknown field "pagination"`},
		{`{"grants": {"refresh_token": {"params": "query", "client_auth": "nobody"}}, "tokens": {"refresh": true}}`, "grants.refresh_token.client_auth"},
		{`{} {}`, "more than one JSON value"},
		{`{"paging": {"size": "big"}}`, "paging.size"},
	} {
		if _, err := fakeprovider.ParseSpec([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSpec(%s) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

// The generic fake written out as a Spec answers exactly as the zero
// Config does: the same token answer fields, user, e-mails, repositories
// and Link headers, so that the "generic" preset can be the Spec.
func TestGenericSpecBehavesAsZeroConfig(t *testing.T) {
	cfg, err := fakeprovider.GenericSpec().Config()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Grants) != 0 || cfg.APITokenQueryOnly {
		t.Fatalf("the generic spec's defaults became rules: %+v", cfg.Grants)
	}
	type answer struct {
		status int
		link   string
		body   string
	}
	run := func(c fakeprovider.Config) []answer {
		p := start(t, c)
		oc := oauthConfig(p, oauth2.AuthStyleInParams)
		v := oauth2.GenerateVerifier()
		tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), login(t, oc, v, ""), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		e := p.Endpoints()
		var out []answer
		for _, u := range []string{e.UserURL, e.EmailsURL, e.ReposURL, e.ReposURL + "?page=2&per_page=1"} {
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := strings.ReplaceAll(readAll(t, resp), p.URL(), "BASE")
			out = append(out, answer{resp.StatusCode, strings.ReplaceAll(resp.Header.Get("Link"), p.URL(), "BASE"), body})
		}
		// A token in the query and a refresh are refused the same way.
		status, _, body := apiGet(t, e.UserURL+"?access_token="+url.QueryEscape(tok.AccessToken), "")
		b, _ := json.Marshal(body)
		out = append(out, answer{status, "", string(b)})
		return out
	}
	zero, spec := run(fakeprovider.Config{}), run(cfg)
	if !reflect.DeepEqual(zero, spec) {
		t.Fatalf("GenericSpec answers differ from Config{}:\n%v\n%v", zero, spec)
	}
	if !strings.Contains(zero[1].body, `"verified":true`) || !strings.Contains(zero[3].link, `rel="next"`) {
		t.Fatalf("unexpected generic answers: %v", zero)
	}
}
