//go:build !wasip1

package plugin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugintest"
)

// TestProviderInTheHost compiles a Gitee-like Provider declaration
// (testdata/gitee) to WebAssembly and runs it through the real host
// against a server on 127.0.0.1: the declaration's operations are the
// module's, the refresh grant goes in the query without client
// credentials, the token rides in access_token on every API call and
// never in a cursor, the addresses' {state, scope} shape is read, and the
// host hands the total_page header to the plugin under its canonical name.
func TestProviderInTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a plugin")
	}
	ctx := context.Background()
	built, err := plugintest.Compile(ctx, "testdata/gitee", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		sent []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		sent = append(sent, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+" body="+string(body)+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path != "/oauth/token" && r.URL.Query().Get("access_token") != "at1" {
			w.WriteHeader(401)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth/token":
			w.Write([]byte(`{"access_token":"at1","refresh_token":"rt2","expires_in":86400,"token_type":"bearer"}`))
		case "/api/v5/user":
			w.Write([]byte(`{"id":7,"login":"ada","name":"Ada","email":null,"avatar_url":"https://gitee.example/a.png","html_url":"https://gitee.example/ada"}`))
		case "/api/v5/emails":
			w.Write([]byte(`[{"email":"ada@example.com","state":"confirmed","scope":["primary","committed"]}]`))
		case "/api/v5/user/repos":
			w.Header()["total_page"] = []string{"2"} // lower case, as Gitee writes it
			if r.URL.Query().Get("page") == "2" {
				w.Write([]byte(`[{"id":2,"full_name":"ada/two","private":true}]`))
			} else {
				w.Write([]byte(`[{"id":1,"full_name":"ada/one"}]`))
			}
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	h, err := plugins.NewHost(ctx, plugins.HostOptions{CacheDir: plugintest.DefaultCacheDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	host := strings.TrimPrefix(srv.URL, "http://")
	p, err := h.LoadDir(ctx, built.Dir, plugins.PluginConfig{
		ClientID: "cid", ClientSecret: "csecret",
		Endpoints:    abi.Endpoints{AuthorizeURL: srv.URL + "/oauth/authorize", TokenURL: srv.URL + "/oauth/token", APIBase: srv.URL + "/api/v5"},
		AllowedHosts: []string{host}, AllowPrivateHosts: []string{host},
	})
	if err != nil {
		t.Fatal(err) // among others: the declared operations differ from the manifest's
	}
	defer p.Close()
	if p.Implements(abi.OpRevoke) || !p.Implements(abi.OpRepos) {
		t.Errorf("operations: revoke %v, repos %v", p.Implements(abi.OpRevoke), p.Implements(abi.OpRepos))
	}
	if _, err := p.Exchange(ctx, plugins.ExchangeInput{Code: "c1", RedirectURI: "https://app.example/cb"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := p.Refresh(ctx, plugins.RefreshInput{RefreshToken: "rt1"}); err != nil || tok.RefreshToken != "rt2" {
		t.Fatalf("refresh: %+v, %v", tok, err)
	}
	u, err := p.User(ctx, "at1")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "7" || u.Email != "ada@example.com" || !u.EmailVerified {
		t.Errorf("user %+v", u)
	}
	var names []string
	cursor := ""
	for range 5 {
		page, err := p.Repos(ctx, plugins.ReposInput{AccessToken: "at1", PerPage: 1, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Repos {
			names = append(names, r.FullName)
		}
		if strings.Contains(page.NextCursor, "at1") {
			t.Errorf("the cursor %q carries the token", page.NextCursor)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(names, []string{"ada/one", "ada/two"}) {
		t.Errorf("repositories %v", names)
	}
	want := []string{
		"POST /oauth/token? body=client_id=cid&client_secret=csecret&code=c1&grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb auth=",
		"POST /oauth/token?grant_type=refresh_token&refresh_token=rt1 body= auth=",
		"GET /api/v5/user?access_token=at1 body= auth=",
		"GET /api/v5/emails?access_token=at1 body= auth=",
		"GET /api/v5/user/repos?per_page=1&access_token=at1 body= auth=",
		"GET /api/v5/user/repos?per_page=1&page=2&access_token=at1 body= auth=",
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sent, want) {
		t.Errorf("the server received\n%s\nwant\n%s", strings.Join(sent, "\n"), strings.Join(want, "\n"))
	}
}
