//go:build !wasip1

package plugin

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// gitee is the declaration of a Gitee-like provider: refresh parameters
// in the query without client credentials, the token in access_token,
// addresses as {state, scope}, repositories paged by total_page.
func gitee() *Provider {
	return &Provider{
		Grants:     Grants{RefreshAuth: AuthNone, RefreshParams: ParamsInQuery},
		API:        API{TokenParam: "access_token"},
		UserPath:   "/user",
		UserFields: UserFields{ID: "id", Login: "login", Name: "name", AvatarURL: "avatar_url", ProfileURL: "html_url", Email: "email"},
		Emails: &EmailList{List: List{Path: "/emails"},
			Fields: EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed", Primary: "scope", PrimaryWhen: "primary"}},
		Repositories: &RepoList{List: List{Path: "/user/repos", Paging: PagingTotalPages, TotalPagesHeaders: []string{"total_page"}},
			Fields: GitHubRepoFields},
	}
}

// TestProviderGitee runs every operation of a declared provider against a
// Gitee-like server on loopback, through the package's native transport.
func TestProviderGitee(t *testing.T) {
	base, log := loopback(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/token" && r.URL.Query().Get("access_token") != "at" {
			w.WriteHeader(401)
			return
		}
		switch r.URL.Path {
		case "/oauth/token":
			tokenJSON(w, r)
		case "/user":
			w.Write([]byte(`{"id":42,"login":"ada","name":"Ada","email":"old@example.com","avatar_url":"https://gitee.example/a.png","html_url":"https://gitee.example/ada"}`))
		case "/emails":
			w.Write([]byte(`[{"email":"x@example.com","state":"confirmed","scope":["committed"]},{"email":"ada@example.com","state":"confirmed","scope":["primary","committed"]}]`))
		case "/user/repos":
			w.Header()["total_page"] = []string{"2"}
			if r.URL.Query().Get("page") == "2" {
				w.Write([]byte(`[{"id":2,"full_name":"ada/two","private":true}]`))
				return
			}
			w.Write([]byte(`[{"id":1,"full_name":"ada/one","html_url":"https://gitee.example/ada/one"}]`))
		default:
			w.WriteHeader(404)
		}
	})
	p := gitee()
	if got, want := Implemented(p), abi.OpSet(0).With(abi.OpAuthorize).With(abi.OpExchange).With(abi.OpRefresh).With(abi.OpUser).With(abi.OpRepos); got != want {
		t.Fatalf("operations %v, want %v", got, want)
	}
	ctx := context.Background()
	ends := Endpoints{TokenURL: base + "/oauth/token", APIBase: base}
	client := Client{ID: "cid", Secret: "csecret"}
	if _, err := p.Exchange(ctx, &ExchangeRequest{Client: client, Endpoints: ends, Code: "c1"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := p.Refresh(ctx, &RefreshRequest{Client: client, Endpoints: ends, RefreshToken: "rt1"}); err != nil || tok.RefreshToken != "rt2" {
		t.Fatalf("refresh: %+v, %v", tok, err)
	}
	u, err := p.User(ctx, &UserRequest{Endpoints: ends, AccessToken: "at"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (User{ID: "42", Login: "ada", Name: "Ada", Email: "ada@example.com", EmailVerified: true, AvatarURL: "https://gitee.example/a.png", ProfileURL: "https://gitee.example/ada"}); *u != want {
		t.Errorf("user %+v\nwant %+v", *u, want)
	}
	page, err := p.Repos(ctx, &ReposRequest{Endpoints: ends, AccessToken: "at", PerPage: 1})
	if err != nil || len(page.Repos) != 1 || page.Repos[0].FullName != "ada/one" || page.NextCursor != "2" {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	page, err = p.Repos(ctx, &ReposRequest{Endpoints: ends, AccessToken: "at", PerPage: 1, Cursor: page.NextCursor})
	if err != nil || len(page.Repos) != 1 || !page.Repos[0].Private || page.NextCursor != "" {
		t.Fatalf("second page: %+v, %v", page, err)
	}
	if _, err := p.Repos(ctx, &ReposRequest{Endpoints: ends, AccessToken: "expired"}); codeOf(err) != abi.CodeInvalidToken {
		t.Errorf("a refused token: %v, want invalid_token", err)
	}
	if err := p.Revoke(ctx, &RevokeRequest{}); codeOf(err) != abi.CodeUnsupported {
		t.Errorf("revoke: %v, want unsupported", err)
	}
	got := log()
	wantSent := []seen{
		{Method: "POST", Path: "/oauth/token", Body: "client_id=cid&client_secret=csecret&code=c1&grant_type=authorization_code", ContentType: "application/x-www-form-urlencoded"},
		{Method: "POST", Path: "/oauth/token", Query: "grant_type=refresh_token&refresh_token=rt1"},
		{Method: "GET", Path: "/user", Query: "access_token=at"},
		{Method: "GET", Path: "/emails", Query: "per_page=100&access_token=at"},
		{Method: "GET", Path: "/user/repos", Query: "per_page=1&access_token=at"},
		{Method: "GET", Path: "/user/repos", Query: "per_page=1&page=2&access_token=at"},
		{Method: "GET", Path: "/user/repos", Query: "per_page=100&access_token=expired"},
	}
	if len(got) != len(wantSent) {
		t.Fatalf("sent %+v", got)
	}
	for i := range got {
		if got[i] != wantSent[i] {
			t.Errorf("request %d: %+v\nwant %+v", i, got[i], wantSent[i])
		}
	}
}

// TestProviderHooks: AfterUser finishes the user with the same Caller; an
// Emails list whose error Ignore accepts keeps the user's address,
// unverified; the …Func fields add and replace operations.
func TestProviderHooks(t *testing.T) {
	base, _ := loopback(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/user":
			w.Write([]byte(`{"id":"u-1","login":"ada","email":"ada@example.com","confirmed":true}`))
		default:
			w.WriteHeader(403)
		}
	})
	var caller string
	p := &Provider{
		API:        API{Scheme: "token"},
		UserPath:   "/user",
		UserFields: UserFields{ID: "id", Login: "login", Email: "email", Other: func(j *JSON, key []byte, u *User) { u.EmailVerified = string(key) == "confirmed" && j.Bool() }},
		Emails: &EmailList{List: List{Path: "/user/emails"}, Fields: GitHubEmailFields,
			Ignore: func(err error) bool { return codeOf(err) == abi.CodeProviderError }},
		AfterUser: func(ctx context.Context, c *Caller, u *User) error {
			caller = c.Base()
			u.ProfileURL = strings.TrimSuffix(c.Base(), "/api/v1") + "/" + u.Login
			return nil
		},
		RevokeFunc: func(context.Context, *RevokeRequest) error { return ErrUnsupported("no revocation here") },
		NoRefresh:  true,
	}
	u, err := p.User(context.Background(), &UserRequest{Endpoints: Endpoints{APIBase: base + "/api/v1"}, AccessToken: "at"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ada@example.com" || u.EmailVerified || u.ProfileURL != base+"/ada" || caller != base+"/api/v1" {
		t.Errorf("user %+v (caller %q)", u, caller)
	}
	want := abi.OpSet(0).With(abi.OpAuthorize).With(abi.OpExchange).With(abi.OpUser).With(abi.OpRevoke)
	if got := Implemented(p); got != want {
		t.Errorf("operations %v, want %v", got, want)
	}
	if _, err := p.Refresh(context.Background(), &RefreshRequest{}); codeOf(err) != abi.CodeUnsupported {
		t.Errorf("refresh with NoRefresh: %v", err)
	}
	p.Emails.Ignore = nil
	if _, err := p.User(context.Background(), &UserRequest{Endpoints: Endpoints{APIBase: base + "/api/v1"}, AccessToken: "at"}); codeOf(err) != abi.CodeProviderError {
		t.Errorf("an e-mail list error not ignored: %v, want provider_error", err)
	}
	// A type embedding the Provider keeps its declared operations and
	// replaces the methods it defines.
	type own struct{ *Provider }
	if got := Implemented(own{p}); got != want {
		t.Errorf("embedded: operations %v, want %v", got, want)
	}
}

// TestProviderCheck: Register refuses an incomplete declaration, saying
// what is missing.
func TestProviderCheck(t *testing.T) {
	for _, c := range []struct {
		p    Provider
		want string
	}{
		{*gitee(), ""},
		{Provider{UserPath: "/user"}, "UserFields.ID"},
		{Provider{Emails: &EmailList{Fields: GitHubEmailFields}}, "Emails.Path"},
		{Provider{Emails: &EmailList{List: List{Path: "/emails"}}}, "Emails.Fields.Address"},
		{Provider{Repositories: &RepoList{}}, "Repositories.Path"},
		{Provider{Repositories: &RepoList{List: List{Path: "/r", Paging: PagingBodyNext}}}, "ItemsMember"},
	} {
		got := c.p.check()
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("check() = %q, want it to name %q", got, c.want)
		}
	}
	defer func() { provider = nil }()
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "UserFields.ID") {
			t.Errorf("Register of an incomplete Provider: recovered %v", v)
		}
	}()
	Register(&Provider{UserPath: "/user"})
}
