//go:build !wasip1

package plugin

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// sent is a request as the host received it.
type sent struct {
	Method, URL string
	Header      Header
	Body        string
}

// fakeHost stands in for the host for the length of a test: answer gets
// every request the plugin sends (decoded from the ABI, as the host
// decodes it) and returns the response; the requests are recorded.
func fakeHost(t *testing.T, answer func(r sent) *Response) *[]sent {
	t.Helper()
	var log []sent
	hostForTest = func(raw []byte) ([]byte, error) {
		var req abi.HTTPRequest
		if err := req.UnmarshalABI(raw); err != nil {
			t.Fatalf("the plugin's request does not decode: %v", err)
		}
		r := sent{Method: req.Method, URL: req.URL, Header: Header{}, Body: string(req.Body)}
		for _, h := range req.Headers {
			r.Header.Add(h.Name, h.Value)
		}
		log = append(log, r)
		resp := answer(r)
		out := abi.HTTPResponse{Status: resp.StatusCode, Body: resp.Body}
		for k, vs := range resp.Header {
			for _, v := range vs {
				out.Headers = append(out.Headers, abi.Header{Name: CanonicalHeaderKey(k), Value: v})
			}
		}
		return out.AppendABI(nil), nil
	}
	t.Cleanup(func() { hostForTest = nil })
	return &log
}

func answer(status int, body string, header ...string) *Response {
	h := Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	return &Response{StatusCode: status, Header: h, Body: []byte(body)}
}

func codeOf(err error) abi.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestGrants: Grants sends the client credentials as its Auth says (the
// zero value in the body) and leaves the scope out of a refresh only when
// told to.
func TestGrants(t *testing.T) {
	log := fakeHost(t, func(sent) *Response {
		return answer(200, `{"access_token":"at","refresh_token":"rt2"}`, "Content-Type", "application/json")
	})
	client := Client{ID: "cid", Secret: "csecret"}
	ends := Endpoints{TokenURL: "https://idp.example/token"}
	for _, c := range []struct {
		name      string
		g         Grants
		basic     bool
		withScope bool
	}{
		{"zero value", Grants{}, false, true},
		{"in params", Grants{Auth: AuthInParams}, false, true},
		{"in header", Grants{Auth: AuthInHeader}, true, true},
		{"refresh without scope", Grants{Auth: AuthInHeader, RefreshWithoutScope: true}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			*log = nil
			tok, err := c.g.Exchange(context.Background(), &ExchangeRequest{Client: client, Endpoints: ends, Code: "code1", RedirectURI: "https://app.example/cb"})
			if err != nil || tok.AccessToken != "at" {
				t.Fatalf("exchange: %+v, %v", tok, err)
			}
			tok, err = c.g.Refresh(context.Background(), &RefreshRequest{Client: client, Endpoints: ends, RefreshToken: "rt1", Scopes: []string{"a", "b"}})
			if err != nil || tok.RefreshToken != "rt2" {
				t.Fatalf("refresh: %+v, %v", tok, err)
			}
			for i, want := range []Values{
				{"grant_type": {"authorization_code"}, "code": {"code1"}, "redirect_uri": {"https://app.example/cb"}},
				{"grant_type": {"refresh_token"}, "refresh_token": {"rt1"}},
			} {
				r := (*log)[i]
				if c.basic {
					if got := r.Header.Get("Authorization"); got != BasicAuth("cid", "csecret") {
						t.Errorf("request %d: Authorization %q", i, got)
					}
				} else {
					want.Set("client_id", "cid")
					want.Set("client_secret", "csecret")
				}
				if i == 1 && c.withScope {
					want.Set("scope", "a b")
				}
				if got := r.Body; got != want.Encode() || r.Method != "POST" || r.URL != ends.TokenURL {
					t.Errorf("request %d: %s %s %s, want the body %s", i, r.Method, r.URL, got, want.Encode())
				}
			}
		})
	}
}

// TestAPIHeaders: the token goes as a Bearer token with Accept JSON; the
// API's fields add to or replace them; a request's own fields win.
func TestAPIHeaders(t *testing.T) {
	log := fakeHost(t, func(sent) *Response { return answer(200, `{}`) })
	ends := Endpoints{APIBase: "https://api.example/v1"}
	plain, err := API{}.For(ends, "tok")
	if err != nil {
		t.Fatal(err)
	}
	gh, err := API{Header: Header{"accept": {"application/vnd.github+json"}, "X-GitHub-Api-Version": {"2022-11-28"}}}.For(ends, "tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := plain.Get(ctx, "/user"); err != nil {
		t.Fatal(err)
	}
	if _, err := gh.Get(ctx, "/user"); err != nil {
		t.Fatal(err)
	}
	req := NewRequest("DELETE", "/grant", []byte("{}"))
	req.Header.Set("Authorization", "Basic xyz")
	if _, err := gh.Do(ctx, req); err != nil {
		t.Fatal(err)
	}
	want := []sent{
		{"GET", "https://api.example/v1/user", Header{"Authorization": {"Bearer tok"}, "Accept": {"application/json"}}, ""},
		{"GET", "https://api.example/v1/user", Header{"Authorization": {"Bearer tok"}, "Accept": {"application/vnd.github+json"}, "X-Github-Api-Version": {"2022-11-28"}}, ""},
		{"DELETE", "https://api.example/v1/grant", Header{"Authorization": {"Basic xyz"}, "Accept": {"application/vnd.github+json"}, "X-Github-Api-Version": {"2022-11-28"}}, "{}"},
	}
	if len(*log) != len(want) {
		t.Fatalf("%d requests, want %d", len(*log), len(want))
	}
	for i, w := range want {
		g := (*log)[i]
		if g.Method != w.Method || g.URL != w.URL || g.Body != w.Body || len(g.Header) != len(w.Header) {
			t.Errorf("request %d: %+v, want %+v", i, g, w)
			continue
		}
		for k, v := range w.Header {
			if !slices.Equal(g.Header[k], v) {
				t.Errorf("request %d: %s: %q, want %q", i, k, g.Header[k], v)
			}
		}
	}
	if _, err := (API{}).For(Endpoints{}, "tok"); codeOf(err) != abi.CodeInvalidRequest {
		t.Errorf("no API base: %v, want invalid_request", err)
	}
}

// TestCallerStaysOnTheAPI: the token is sent only under the API base; a
// URL elsewhere is refused before anything is sent.
func TestCallerStaysOnTheAPI(t *testing.T) {
	log := fakeHost(t, func(sent) *Response { return answer(200, `[]`) })
	c, err := API{}.For(Endpoints{APIBase: "https://api.example/v1"}, "tok")
	if err != nil {
		t.Fatal(err)
	}
	for u, owned := range map[string]bool{
		"https://api.example/v1/user/repos?page=2": true,
		"https://api.example/v1/":                  true,
		"https://api.example/v1":                   false,
		"https://api.example/v1.evil.example/x":    false,
		"https://api.example/v1/../admin":          false,
		"https://api.example/v1/x/..":              false,
		"https://evil.example/v1/user":             false,
		"/user":                                    false, // a path is not a URL
	} {
		if got := c.Owns(u); got != owned {
			t.Errorf("Owns(%q) = %v, want %v", u, got, owned)
		}
		if owned || u == "/user" {
			continue
		}
		if _, err := c.Get(context.Background(), u); codeOf(err) != abi.CodeInvalidRequest {
			t.Errorf("Get(%q): %v, want invalid_request", u, err)
		}
		for _, p := range []Paging{PagingLink, PagingNextPage} {
			if _, _, err := c.Page(context.Background(), p, "/user/repos", u); codeOf(err) != abi.CodeInvalidRequest {
				t.Errorf("Page(%v, cursor %q): %v, want invalid_request", p, u, err)
			}
		}
	}
	if len(*log) != 0 {
		t.Errorf("requests were sent: %+v", *log)
	}
	if _, _, err := c.Page(context.Background(), PagingLink, "/user/repos", "3"); codeOf(err) != abi.CodeInvalidRequest {
		t.Errorf("a page number with PagingLink: %v, want invalid_request", err)
	}
}

// TestCallerChecks: Get and Page judge answers with CheckResponse, or the
// API's Check; Do leaves the status to the caller.
func TestCallerChecks(t *testing.T) {
	fakeHost(t, func(sent) *Response { return answer(401, `{"message":"Bad credentials"}`) })
	ctx := context.Background()
	c, _ := API{}.For(Endpoints{APIBase: "https://api.example"}, "tok")
	if _, err := c.Get(ctx, "/user"); codeOf(err) != abi.CodeInvalidToken {
		t.Errorf("401: %v, want invalid_token", err)
	}
	if _, _, err := c.Page(ctx, PagingLink, "/repos", ""); codeOf(err) != abi.CodeInvalidToken {
		t.Errorf("401 on a page: %v, want invalid_token", err)
	}
	if resp, err := c.Do(ctx, NewRequest("GET", "/user", nil)); err != nil || resp.StatusCode != 401 {
		t.Errorf("Do: %v, %v, want the 401 answer", resp, err)
	}
	var checked string
	own, _ := API{Check: func(method, u string, r *Response) error {
		checked = method + " " + u
		return ErrUnsupported("checked")
	}}.For(Endpoints{APIBase: "https://api.example"}, "tok")
	if _, err := own.Get(ctx, "/user?x=1"); codeOf(err) != abi.CodeUnsupported || checked != "GET https://api.example/user?x=1" {
		t.Errorf("own Check: %v after %q", err, checked)
	}
}

// TestPage: the paging styles' cursors, and where each goes on.
func TestPage(t *testing.T) {
	const base = "https://api.example/v4"
	var next *Response
	log := fakeHost(t, func(sent) *Response { return next })
	c, _ := API{}.For(Endpoints{APIBase: base}, "tok")
	for _, tc := range []struct {
		name          string
		paging        Paging
		first, cursor string
		answer        *Response
		wantURL       string
		wantNext      string
	}{
		{"link first page", PagingLink, "/user/repos?per_page=2", "",
			answer(200, `[]`, "Link", `<`+base+`/user/repos?per_page=2&page=2>; rel="next"`),
			base + "/user/repos?per_page=2", base + "/user/repos?per_page=2&page=2"},
		{"link cursor", PagingLink, "/user/repos?per_page=2", base + "/user/repos?per_page=2&page=2",
			answer(200, `[]`), base + "/user/repos?per_page=2&page=2", ""},
		{"next page header", PagingNextPage, "/projects?per_page=2", "",
			answer(200, `[]`, "X-Next-Page", " 2 ", "Link", `<`+base+`/elsewhere>; rel="next"`),
			base + "/projects?per_page=2", "2"},
		{"page number cursor", PagingNextPage, "/projects?per_page=2", "2",
			answer(200, `[]`, "X-Next-Page", ""), base + "/projects?per_page=2&page=2", ""},
		{"page number without a query", PagingNextPage, "/projects", "7",
			answer(200, `[]`), base + "/projects?page=7", ""},
		{"keyset: no header, the Link header", PagingNextPage, "/projects?per_page=2", base + "/projects?id_after=9",
			answer(200, `[]`, "Link", `<`+base+`/projects?id_after=11>; rel="next"`),
			base + "/projects?id_after=9", base + "/projects?id_after=11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			*log, next = nil, tc.answer
			_, got, err := c.Page(context.Background(), tc.paging, tc.first, tc.cursor)
			if err != nil || got != tc.wantNext {
				t.Errorf("next %q, %v; want %q", got, err, tc.wantNext)
			}
			if len(*log) != 1 || (*log)[0].URL != tc.wantURL {
				t.Errorf("sent %+v, want one GET of %s", *log, tc.wantURL)
			}
		})
	}
}

func TestPerPage(t *testing.T) {
	for _, c := range [][3]int{{0, 100, 100}, {-1, 100, 100}, {25, 100, 25}, {100, 100, 100}, {101, 100, 100}, {51, 50, 50}} {
		if got := PerPage(c[0], c[1]); got != c[2] {
			t.Errorf("PerPage(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}
