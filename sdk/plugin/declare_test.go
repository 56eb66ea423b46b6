//go:build !wasip1

package plugin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// tokenJSON answers a token request.
func tokenJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"access_token":"at2","refresh_token":"rt2","expires_in":3600}`))
}

// TestTokenStyles: each client authentication style and parameter
// placement sends what it says, over real HTTP, and never puts the client
// secret in the URL.
func TestTokenStyles(t *testing.T) {
	base, log := loopback(t, tokenJSON)
	client := Client{ID: "cid", Secret: "csecret"}
	basic := BasicAuth("cid", "csecret")
	form := "application/x-www-form-urlencoded"
	for _, c := range []struct {
		name  string
		style TokenStyle
		want  seen // Method and Path are POST /token
	}{
		{"zero value", TokenStyle{}, seen{Body: "client_id=cid&client_secret=csecret&grant_type=refresh_token&refresh_token=rt1", ContentType: form}},
		{"in params", TokenStyle{Auth: AuthInParams, Params: ParamsInBody}, seen{Body: "client_id=cid&client_secret=csecret&grant_type=refresh_token&refresh_token=rt1", ContentType: form}},
		{"basic", TokenStyle{Auth: AuthInHeader}, seen{Body: "grant_type=refresh_token&refresh_token=rt1", Authorization: basic, ContentType: form}},
		{"none", TokenStyle{Auth: AuthNone}, seen{Body: "grant_type=refresh_token&refresh_token=rt1", ContentType: form}},
		{"none in query (Gitee)", TokenStyle{Auth: AuthNone, Params: ParamsInQuery}, seen{Query: "grant_type=refresh_token&refresh_token=rt1"}},
		{"basic in query", TokenStyle{Auth: AuthInHeader, Params: ParamsInQuery}, seen{Query: "grant_type=refresh_token&refresh_token=rt1", Authorization: basic}},
		{"params in query, secret in body", TokenStyle{Params: ParamsInQuery}, seen{Query: "client_id=cid&grant_type=refresh_token&refresh_token=rt1", Body: "client_secret=csecret", ContentType: form}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := len(log())
			params := Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt1"}}
			tok, err := c.style.Request(context.Background(), base+"/token", client, params)
			if err != nil || tok.AccessToken != "at2" || tok.RefreshToken != "rt2" || tok.ExpiresIn != 3600 {
				t.Fatalf("Request: %+v, %v", tok, err)
			}
			if len(params) != 2 {
				t.Errorf("params were modified: %v", params)
			}
			got := log()[n:]
			want := c.want
			want.Method, want.Path = "POST", "/token"
			if len(got) != 1 || got[0] != want {
				t.Fatalf("sent %+v\nwant %+v", got, want)
			}
			if strings.Contains(got[0].Query, "csecret") {
				t.Error("the client secret went in the URL")
			}
		})
	}
}

// TestTokenStylePublicClient: a client without a secret names itself and
// sends no client_secret, in the body or in the query.
func TestTokenStylePublicClient(t *testing.T) {
	base, log := loopback(t, tokenJSON)
	params := Values{"grant_type": {"authorization_code"}, "code": {"c1"}, "code_verifier": {"v1"}}
	for _, s := range []TokenStyle{{}, {Params: ParamsInQuery}} {
		if _, err := s.Request(context.Background(), base+"/token", Client{ID: "app"}, params); err != nil {
			t.Fatal(err)
		}
	}
	want := []seen{
		{Method: "POST", Path: "/token", Body: "client_id=app&code=c1&code_verifier=v1&grant_type=authorization_code", ContentType: "application/x-www-form-urlencoded"},
		{Method: "POST", Path: "/token", Query: "client_id=app&code=c1&code_verifier=v1&grant_type=authorization_code"},
	}
	if got := log(); !slices.Equal(got, want) {
		t.Errorf("sent %+v\nwant %+v", got, want)
	}
}

// TestGrantsRefreshStyle: a Grants's refresh grant may differ from its
// code grant (Gitee), and the exchange keeps Auth and Params.
func TestGrantsRefreshStyle(t *testing.T) {
	base, log := loopback(t, tokenJSON)
	g := Grants{Auth: AuthInParams, RefreshAuth: AuthNone, RefreshParams: ParamsInQuery}
	ctx := context.Background()
	ends := Endpoints{TokenURL: base + "/oauth/token"}
	client := Client{ID: "cid", Secret: "csecret"}
	if _, err := g.Exchange(ctx, &ExchangeRequest{Client: client, Endpoints: ends, Code: "c1", RedirectURI: "https://app.example/cb"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Refresh(ctx, &RefreshRequest{Client: client, Endpoints: ends, RefreshToken: "rt1", Scopes: []string{"user_info"}}); err != nil {
		t.Fatal(err)
	}
	got := log()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	if got[0].Query != "" || got[0].Body != "client_id=cid&client_secret=csecret&code=c1&grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb" {
		t.Errorf("exchange sent %+v", got[0])
	}
	if got[1].Body != "" || got[1].Query != "grant_type=refresh_token&refresh_token=rt1&scope=user_info" || got[1].Authorization != "" {
		t.Errorf("refresh sent %+v", got[1])
	}
	if s := (Grants{Auth: AuthInHeader}).RefreshStyle(); s != (TokenStyle{Auth: AuthInHeader}) {
		t.Errorf("RefreshStyle without overrides: %+v", s)
	}
}

// TestAPITokenPlacement: the token goes as a Bearer token, with another
// scheme, or in a query parameter; in a query parameter it is removed
// from the cursors the Caller returns and added again when one is
// followed.
func TestAPITokenPlacement(t *testing.T) {
	var base string
	base, log := loopback(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "" {
			w.Header().Set("Link", `<`+base+`/repos?access_token=tok&page=2>; rel="next"`)
		}
		w.Write([]byte(`[]`))
	})
	ctx := context.Background()
	ends := Endpoints{APIBase: base}
	for _, c := range []struct {
		name      string
		api       API
		auth      string
		query     string
		nextQuery string
	}{
		{"bearer", API{}, "Bearer tok", "", "access_token=tok&page=2"},
		{"token scheme", API{Scheme: "token"}, "token tok", "", "access_token=tok&page=2"},
		{"query parameter", API{TokenParam: "access_token"}, "", "access_token=tok", "page=2&access_token=tok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := len(log())
			cl, err := c.api.For(ends, "tok")
			if err != nil {
				t.Fatal(err)
			}
			_, next, err := cl.Page(ctx, PagingLink, "/repos", "")
			if err != nil {
				t.Fatal(err)
			}
			if c.api.TokenParam != "" && strings.Contains(next, "tok") {
				t.Errorf("the cursor %q carries the token", next)
			}
			if _, _, err := cl.Page(ctx, PagingLink, "/repos", next); err != nil {
				t.Fatal(err)
			}
			got := log()[n:]
			if len(got) != 2 || got[0].Authorization != c.auth || got[0].Query != c.query || got[1].Query != c.nextQuery || got[1].Authorization != c.auth {
				t.Errorf("sent %+v", got)
			}
		})
	}
}

// TestSetParam: the token parameter replaces every earlier one, escaped
// or not, and leaves the rest of the URL alone.
func TestSetParam(t *testing.T) {
	for _, c := range []struct{ in, value, want string }{
		{"https://a.example/x", "t", "https://a.example/x?access_token=t"},
		{"https://a.example/x?page=2", "t", "https://a.example/x?page=2&access_token=t"},
		{"https://a.example/x?access_token=old&page=2&access_token=old2", "t", "https://a.example/x?page=2&access_token=t"},
		{"https://a.example/x?access_token=old&page=2", "", "https://a.example/x?page=2"},
		{"https://a.example/x?access_token=old", "", "https://a.example/x"},
		{"https://a.example/x?page=2#frag", "a b", "https://a.example/x?page=2&access_token=a+b#frag"},
	} {
		if got := setParam(c.in, "access_token", c.value); got != c.want {
			t.Errorf("setParam(%q, %q) = %q, want %q", c.in, c.value, got, c.want)
		}
	}
}

// pagedServer serves items 1..total, per page as asked (per_page or
// limit), in one of List's paging styles.
func pagedServer(t *testing.T, style Paging, total int) (string, func() []seen) {
	var base string
	base, log := loopback(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		page, _ := strconv.Atoi(q.Get("page"))
		page = max(page, 1)
		per, _ := strconv.Atoi(q.Get("per_page"))
		if per == 0 {
			per, _ = strconv.Atoi(q.Get("limit"))
		}
		switch {
		case style == PagingNone && r.URL.RawQuery != "":
			t.Errorf("parameters on a list that is not paged: %q", r.URL.RawQuery)
		case style == PagingNone:
			per = 100
		case per <= 0 || per > 100:
			t.Errorf("page size %q", r.URL.RawQuery)
			per = 30
		}
		pages := (total + per - 1) / per
		var items []string
		for i := (page-1)*per + 1; i <= min(page*per, total); i++ {
			items = append(items, `{"id":`+strconv.Itoa(i)+`}`)
		}
		arr := "[" + strings.Join(items, ",") + "]"
		nextURL := ""
		if page < pages {
			nextURL = base + r.URL.Path + "?per_page=" + strconv.Itoa(per) + "&page=" + strconv.Itoa(page+1)
		}
		switch style {
		case PagingLink:
			if nextURL != "" {
				w.Header().Set("Link", `<`+nextURL+`>; rel="next"`)
			}
		case PagingNextPage:
			w.Header().Set("X-Next-Page", "")
			if page < pages {
				w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
			}
		case PagingTotalPages:
			w.Header()["total_page"] = []string{strconv.Itoa(pages)} // as Gitee writes it
		case PagingBodyNext:
			next := "null"
			if nextURL != "" {
				next = `"` + nextURL + `"`
			}
			arr = `{"pagelen":` + strconv.Itoa(per) + `,"values":` + arr + `,"next":` + next + `}`
		}
		w.Write([]byte(arr))
	})
	return base, log
}

// TestListPagingStyles: every paging style walks a list to its end, over
// real HTTP, one request per page (plus the empty page that ends
// PagingPages on a full last page).
func TestListPagingStyles(t *testing.T) {
	for _, c := range []struct {
		name  string
		list  List
		total int
		calls int
	}{
		{"link", List{Path: "/repos"}, 7, 3},
		{"x-next-page", List{Path: "/repos", Paging: PagingNextPage}, 7, 3},
		{"total_page header", List{Path: "/repos", Paging: PagingTotalPages, TotalPagesHeaders: []string{"X-Total-Pages", "total_page"}}, 7, 3},
		{"next in the body", List{Path: "/repos", Paging: PagingBodyNext, ItemsMember: "values"}, 7, 3},
		{"pages until a short one", List{Path: "/repos", Paging: PagingPages, PerPageParams: []string{"limit", "per_page"}}, 7, 3},
		{"pages, full last page", List{Path: "/repos", Paging: PagingPages}, 6, 3},
		{"pages, empty list", List{Path: "/repos", Paging: PagingPages}, 0, 1},
		{"one page", List{Path: "/repos?sort=id", Paging: PagingTotalPages, TotalPagesHeaders: []string{"total_page"}}, 2, 1},
		{"not paged", List{Path: "/repos", Paging: PagingNone}, 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, log := pagedServer(t, c.list.Paging, c.total)
			cl, err := API{}.For(Endpoints{APIBase: base}, "tok")
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			cursor := ""
			for i := 0; i < 10; i++ {
				cursor, err = cl.List(context.Background(), &c.list, 3, cursor, func(j *JSON) {
					j.Object(func(key []byte) {
						if string(key) == "id" {
							ids = append(ids, j.Number())
						}
					})
				})
				if err != nil {
					t.Fatal(err)
				}
				if cursor == "" {
					break
				}
			}
			var want []string
			for i := 1; i <= c.total; i++ {
				want = append(want, strconv.Itoa(i))
			}
			if !slices.Equal(ids, want) || cursor != "" {
				t.Errorf("listed %v (cursor %q), want %v", ids, cursor, want)
			}
			if got := log(); len(got) != c.calls {
				t.Errorf("%d requests, want %d: %+v", len(got), c.calls, got)
			}
		})
	}
}

// TestListCursors: a cursor that names no page of the API, or a page
// number for a style that follows URLs, is refused before anything is
// sent; a total-pages list without the header goes on while pages are
// full.
func TestListCursors(t *testing.T) {
	base, log := pagedServer(t, PagingPages, 7)
	cl, _ := API{}.For(Endpoints{APIBase: base}, "tok")
	ctx := context.Background()
	nop := func(*JSON) {}
	for _, c := range []struct {
		list   List
		cursor string
	}{
		{List{Path: "/repos"}, "2"},
		{List{Path: "/repos"}, "https://evil.example/repos"},
		{List{Path: "/repos", Paging: PagingBodyNext, ItemsMember: "values"}, base + "/../admin"},
		{List{Path: "/repos", Paging: PagingTotalPages}, base + "/repos?page=2"},
		{List{Path: "/repos", Paging: PagingPages}, "-1"},
		{List{Path: "/repos", Paging: PagingPages}, "99999999999"},
		{List{Path: "/repos", Paging: PagingNone}, "2"},
	} {
		if _, err := cl.List(ctx, &c.list, 3, c.cursor, nop); codeOf(err) != abi.CodeInvalidRequest {
			t.Errorf("paging %d, cursor %q: %v, want invalid_request", c.list.Paging, c.cursor, err)
		}
	}
	if got := log(); len(got) != 0 {
		t.Fatalf("requests were sent: %+v", got)
	}
	l := List{Path: "/repos", Paging: PagingTotalPages} // the server sends no X-Total-Pages
	next, err := cl.List(ctx, &l, 3, "", nop)
	if err != nil || next != "2" {
		t.Errorf("a full page without the header: next %q, %v, want 2", next, err)
	}
	next, err = cl.List(ctx, &l, 3, "3", nop)
	if err != nil || next != "" {
		t.Errorf("a short page without the header: next %q, %v, want the end", next, err)
	}
	if got := log(); len(got) != 2 || got[1].Query != "per_page=3&page=3" {
		t.Errorf("sent %+v", got)
	}
}

// TestEmailFieldsWhen: Gitee's entries say verified with a state and
// primary with a scope list; other shapes of those members count as no.
func TestEmailFieldsWhen(t *testing.T) {
	f := EmailFields{Address: "email", Verified: "state", VerifiedWhen: "confirmed", Primary: "scope", PrimaryWhen: "primary"}
	list, err := f.Parse([]byte(`[
		{"email":"a@example.com","state":"unconfirmed","scope":["committed"]},
		{"email":"b@example.com","state":"confirmed","scope":["committed","primary"]},
		{"email":"c@example.com","state":"confirmed","scope":"primary"},
		{"email":"d@example.com","state":true,"scope":{"primary":true}},
		{"email":"e@example.com","state":null,"scope":[1,["primary"],"notify"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Email{
		{"a@example.com", false, false},
		{"b@example.com", true, true},
		{"c@example.com", true, true},
		{"d@example.com", false, false},
		{"e@example.com", false, false},
	}
	if !slices.Equal(list, want) {
		t.Errorf("read %+v\nwant %+v", list, want)
	}
}

// TestEmailChoice: EmailPrimary takes the primary entry with its flag;
// EmailPrimaryElseVerified falls back to the first verified address.
func TestEmailChoice(t *testing.T) {
	unverifiedPrimary := []Email{{"v@example.com", false, true}, {"p@example.com", true, false}}
	noPrimary := []Email{{"u@example.com", false, false}, {"", false, true}, {"v@example.com", false, true}}
	for _, c := range []struct {
		choice EmailChoice
		list   []Email
		want   Email
		ok     bool
	}{
		{EmailPrimary, unverifiedPrimary, Email{"p@example.com", true, false}, true},
		{EmailPrimaryElseVerified, unverifiedPrimary, Email{"p@example.com", true, false}, true},
		{EmailPrimary, noPrimary, Email{}, false},
		{EmailPrimaryElseVerified, noPrimary, Email{"v@example.com", false, true}, true},
		{EmailPrimaryElseVerified, nil, Email{}, false},
	} {
		if e, ok := c.choice.Choose(c.list); e != c.want || ok != c.ok {
			t.Errorf("%d.Choose(%v) = %v, %v, want %v, %v", c.choice, c.list, e, ok, c.want, c.ok)
		}
	}
}

// TestEmailListNextOutside: an address list read over several pages
// follows the provider's next links only under the API base; a link
// elsewhere is the provider's error (provider_error, which Ignore may
// accept), not a bad cursor, and nothing is sent to it. A page with the
// primary address ends the reading before its link matters.
func TestEmailListNextOutside(t *testing.T) {
	next := ""
	base, log := loopback(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			w.Write([]byte(`{"values":[{"email":"p@example.com","is_primary":true,"is_confirmed":true}]}`))
			return
		}
		w.Write([]byte(`{"values":[{"email":"o@example.com","is_primary":false,"is_confirmed":true}],"next":"` + next + `"}`))
	})
	c, _ := API{}.For(Endpoints{APIBase: base + "/2.0"}, "tok")
	l := &EmailList{List: List{Path: "/user/emails", Paging: PagingBodyNext, ItemsMember: "values", PerPageParams: []string{"pagelen"}},
		Fields: EmailFields{Address: "email", Primary: "is_primary", Verified: "is_confirmed"}, MaxPages: 5}
	ctx := context.Background()

	next = base + "/2.0/user/emails?pagelen=100&page=2"
	u := &User{}
	if err := l.Apply(ctx, c, u); err != nil || u.Email != "p@example.com" || !u.EmailVerified {
		t.Fatalf("through the next link: %+v, %v", u, err)
	}
	if got := log(); len(got) != 2 || got[0].Query != "pagelen=100" {
		t.Fatalf("sent %+v", got)
	}

	for _, n := range []string{"https://evil.example/2.0/user/emails?page=2", base + "/2.0/../admin?page=2", base + "/2.0.evil/x?page=2"} {
		next = n
		err := l.Apply(ctx, c, &User{})
		var e *Error
		if !errors.As(err, &e) || e.Code != abi.CodeProviderError || !strings.Contains(e.Message, "/user/emails pointed its next page outside the API") {
			t.Errorf("next %q: %v, want provider_error", n, err)
		}
	}
	if got := log(); len(got) != 2+3 {
		t.Errorf("a link outside the API was followed: %+v", got[2:])
	}
	l.Ignore = func(error) bool { return true }
	if u := (&User{Email: "o@example.com", EmailVerified: true}); l.Apply(ctx, c, u) != nil || u.EmailVerified {
		t.Errorf("an ignored outside link: %+v, want the address unverified", u)
	}
}
