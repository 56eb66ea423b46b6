package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests check the client's side only: requests, decoding, checks of
// the answers, error mapping. A small table stands in for Arbor; the real
// workers API is tested end to end in cmd/arbor (grape_workers_test.go).

const (
	apiWorkerID = "0b6f8e2a-4c1d-4e5f-9a7b-3c2d1e0f9a8b"
	testAccess  = "access-1"
)

type fakeAnswer struct {
	status int
	body   string
}

type fakeRequest struct {
	method, path, authz, contentType, body string
}

// fakeWorkersAPI answers "METHOD /path" from routes (404 otherwise) and
// records the requests.
type fakeWorkersAPI struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]fakeAnswer
	reqs   []fakeRequest
}

func newFakeWorkersAPI(t *testing.T, routes map[string]fakeAnswer) *fakeWorkersAPI {
	f := &fakeWorkersAPI{routes: routes}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Method + " " + r.URL.Path
		f.mu.Lock()
		f.reqs = append(f.reqs, fakeRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)})
		a, ok := f.routes[key]
		f.mu.Unlock()
		if !ok {
			a = fakeAnswer{404, `{"error":"not_found","message":"no route"}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeWorkersAPI) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

// workersFor returns a Workers logged in to f with a fresh access token.
func workersFor(t *testing.T, f *fakeWorkersAPI) (*Workers, Config) {
	t.Helper()
	cfg := Config{Server: f.URL, Store: FileStore{Path: t.TempDir() + "/auth.json"}}
	tok := &Token{AccessToken: testAccess, RefreshToken: "refresh-1", Expiry: time.Now().Add(time.Hour), Server: f.URL}
	if err := cfg.Store.Save(tok); err != nil {
		t.Fatal(err)
	}
	return NewWorkers(cfg), cfg
}

func mustToken(t *testing.T) string {
	t.Helper()
	tok, err := NewWorkerToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestWorkersRequestsAndAnswers(t *testing.T) {
	tok1, tok2 := mustToken(t), mustToken(t)
	upper := strings.ToUpper(apiWorkerID)
	w1 := `{"id":"` + apiWorkerID + `","name":"build-01","created_at":"2025-03-01T10:00:00Z"}`
	w1used := `{"id":"` + apiWorkerID + `","name":"build-01","created_at":"2025-03-01T10:00:00Z","rotated_at":"2025-03-02T10:00:00Z","last_used_at":"2025-03-03T10:00:00Z","last_address":"192.0.2.7"}`
	p := PathWorkers + "/" + apiWorkerID
	f := newFakeWorkersAPI(t, map[string]fakeAnswer{
		"POST " + PathWorkers:   {201, `{"worker":` + w1 + `,"token":"` + tok1 + `"}`},
		"GET " + PathWorkers:    {200, `{"workers":[` + w1used + `]}`},
		"GET " + p:              {200, `{"worker":` + w1 + `}`},
		"PATCH " + p:            {200, `{"worker":` + strings.Replace(w1, "build-01", "build-02", 1) + `}`},
		"POST " + p + "/rotate": {200, `{"worker":` + w1 + `,"token":"` + tok2 + `"}`},
		"DELETE " + p:           {204, ""},
	})
	ws, _ := workersFor(t, f)
	ctx := context.Background()

	w, tok, err := ws.Register(ctx, "build-01")
	if err != nil || w.ID != apiWorkerID || w.Name != "build-01" || tok != tok1 ||
		!w.CreatedAt.Equal(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) || !w.LastUsedAt.IsZero() || !w.RotatedAt.IsZero() {
		t.Errorf("Register: %+v %v", w, err)
	}
	list, err := ws.List(ctx)
	if err != nil || len(list) != 1 || list[0].LastAddress != "192.0.2.7" ||
		!list[0].LastUsedAt.Equal(time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)) || list[0].RotatedAt.IsZero() {
		t.Errorf("List: %+v %v", list, err)
	}
	if w, err := ws.Get(ctx, upper); err != nil || w.ID != apiWorkerID {
		t.Errorf("Get with an uppercase id: %+v %v", w, err)
	}
	if w, err := ws.Rename(ctx, apiWorkerID, "build-02"); err != nil || w.Name != "build-02" {
		t.Errorf("Rename: %+v %v", w, err)
	}
	if _, tok, err := ws.Rotate(ctx, apiWorkerID); err != nil || tok != tok2 {
		t.Errorf("Rotate: %v", err)
	}
	if err := ws.Revoke(ctx, apiWorkerID); err != nil {
		t.Errorf("Revoke: %v", err)
	}

	want := []fakeRequest{
		{"POST", PathWorkers, "", "application/json", `{"name":"build-01"}`},
		{"GET", PathWorkers, "", "", ""},
		{"GET", p, "", "", ""},
		{"PATCH", p, "", "application/json", `{"name":"build-02"}`},
		{"POST", p + "/rotate", "", "", ""},
		{"DELETE", p, "", "", ""},
	}
	got := f.requests()
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(got), len(want), got)
	}
	for i, r := range got {
		want[i].authz = "Bearer " + testAccess
		if r != want[i] {
			t.Errorf("request %d: %+v\nwant        %+v", i, r, want[i])
		}
	}
}

func TestWorkersRefuseBadAnswers(t *testing.T) {
	good := mustToken(t)
	badSum := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])
	w1 := `{"id":"` + apiWorkerID + `","name":"build-01","created_at":"2025-03-01T10:00:00Z"}`
	other := strings.Replace(w1, "0b6f8e2a", "1b6f8e2a", 1)
	rotate := "POST " + PathWorkers + "/" + apiWorkerID + "/rotate"
	for _, c := range []struct {
		name, route string
		answer      fakeAnswer
		want        string
	}{
		{"wrong checksum", "POST " + PathWorkers, fakeAnswer{201, `{"worker":` + w1 + `,"token":"` + badSum + `"}`}, "malformed worker token"},
		{"not a token", "POST " + PathWorkers, fakeAnswer{201, `{"worker":` + w1 + `,"token":"` + good[5:] + `"}`}, "malformed worker token"},
		{"no token", "POST " + PathWorkers, fakeAnswer{201, `{"worker":` + w1 + `}`}, "without a token"},
		{"no worker", "POST " + PathWorkers, fakeAnswer{201, `{"token":"` + good + `"}`}, "without a worker"},
		{"id not a UUID", "POST " + PathWorkers, fakeAnswer{201, `{"worker":{"id":"7","name":"x"},"token":"` + good + `"}`}, "not a UUID"},
		{"token in a time field", "POST " + PathWorkers, fakeAnswer{201, `{"worker":{"id":"` + apiWorkerID + `","created_at":"` + good + `"},"token":"` + good + `"}`}, "not the expected JSON"},
		{"another worker", rotate, fakeAnswer{200, `{"worker":` + other + `,"token":"` + good + `"}`}, "another worker"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeWorkersAPI(t, map[string]fakeAnswer{c.route: c.answer})
			ws, _ := workersFor(t, f)
			var err error
			if c.route == rotate {
				_, _, err = ws.Rotate(context.Background(), apiWorkerID)
			} else {
				_, _, err = ws.Register(context.Background(), "build-01")
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			for _, secret := range []string{good, badSum, good[5:], good[5:20]} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes the token: %v", err)
				}
			}
		})
	}
}

func TestWorkersCheckIDsBeforeSending(t *testing.T) {
	f := newFakeWorkersAPI(t, nil)
	ws, _ := workersFor(t, f)
	tok := mustToken(t)
	ctx := context.Background()
	for _, id := range []string{"", "build-01", apiWorkerID + "x", "../" + apiWorkerID[3:], tok} {
		_, err1 := ws.Get(ctx, id)
		_, err2 := ws.Rename(ctx, id, "x")
		_, _, err3 := ws.Rotate(ctx, id)
		err4 := ws.Revoke(ctx, id)
		for _, err := range []error{err1, err2, err3, err4} {
			if err == nil || !strings.Contains(err.Error(), "worker id") {
				t.Errorf("id %q: error %v", id, err)
			} else if strings.Contains(err.Error(), tok) {
				t.Errorf("the error quotes the token: %v", err)
			}
		}
	}
	if _, err := ws.Get(ctx, tok); err == nil || !strings.Contains(err.Error(), "worker token, not a worker id") {
		t.Errorf("a token as id: %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent for bad ids", n)
	}
}

func TestWorkersErrors(t *testing.T) {
	p := PathWorkers + "/" + apiWorkerID
	f := newFakeWorkersAPI(t, map[string]fakeAnswer{
		"GET " + p:            {404, `{"error":"worker_not_found","message":"No such worker","request_id":"r1"}`},
		"PATCH " + p:          {400, `{"error":"invalid_name","message":"A name has 1 to 64 printable characters"}`},
		"DELETE " + p:         {503, `{"error":"store_unavailable","message":"Try again"}`},
		"GET " + PathWorkers:  {502, "<html><body>Bad Gateway</body></html>"},
		"POST " + PathWorkers: {401, `{"error":"unauthenticated","message":"Sign in"}`},
		// The retry after a 401 gets a new pair and is refused again.
		"POST " + PathRefresh: {200, `{"access_token":"access-2","refresh_token":"refresh-2","token_type":"Bearer","expires_in":3600}`},
	})
	ws, _ := workersFor(t, f)
	ctx := context.Background()

	_, err := ws.Get(ctx, apiWorkerID)
	var ae *APIError
	if !IsCode(err, CodeWorkerNotFound) || !errors.As(err, &ae) || ae.Status != 404 || ae.Message != "No such worker" {
		t.Errorf("Get: %v", err)
	}
	if _, err := ws.Rename(ctx, apiWorkerID, strings.Repeat("x", 65)); !IsCode(err, CodeInvalidName) {
		t.Errorf("Rename: %v", err)
	}
	if err := ws.Revoke(ctx, apiWorkerID); !IsCode(err, CodeStoreUnavailable) {
		t.Errorf("Revoke: %v", err)
	}
	if _, err := ws.List(ctx); !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(ae.Message, "Bad Gateway") {
		t.Errorf("List through a failing proxy: %v", err)
	}
	_, _, err = ws.Register(ctx, "build-01")
	if !errors.Is(err, ErrNotLoggedIn) || !IsCode(err, CodeUnauthenticated) || !strings.Contains(err.Error(), "grape login") {
		t.Errorf("Register refused twice: %v", err)
	}
	var regs []string
	for _, r := range f.requests() {
		if r.path == PathWorkers && r.method == "POST" {
			regs = append(regs, r.authz+" "+r.body)
		}
	}
	if len(regs) != 2 || regs[0] != "Bearer access-1 {\"name\":\"build-01\"}" || regs[1] != "Bearer access-2 {\"name\":\"build-01\"}" {
		t.Errorf("register requests (want one, then a retry with the refreshed token and the same body): %q", regs)
	}
}

func TestWorkersNotLoggedIn(t *testing.T) {
	f := newFakeWorkersAPI(t, nil)
	ws := NewWorkers(Config{Server: f.URL, Store: FileStore{Path: t.TempDir() + "/auth.json"}})
	if _, err := ws.List(context.Background()); !errors.Is(err, ErrNotLoggedIn) || !strings.Contains(err.Error(), "grape login") {
		t.Errorf("List without a login: %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests without a login", n)
	}
}

func TestWorkerJSON(t *testing.T) {
	b, err := json.Marshal(Worker{ID: apiWorkerID, Name: "a", CreatedAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)})
	if err != nil || string(b) != `{"id":"`+apiWorkerID+`","name":"a","created_at":"2025-03-01T10:00:00Z"}` {
		t.Errorf("%s %v", b, err)
	}
}

// RegisterRepoCredential sends the name, scopes and patterns, and wants a
// credential (a worker with scopes) and a token back; without a scope it
// sends nothing.
func TestRegisterRepoCredential(t *testing.T) {
	tok := mustToken(t)
	cred := `{"id":"` + apiWorkerID + `","name":"argocd","created_at":"2025-03-01T10:00:00Z","scopes":["git:read"],"repos":["octocat/*"]}`
	plain := `{"id":"` + apiWorkerID + `","name":"argocd","created_at":"2025-03-01T10:00:00Z"}`
	for _, tc := range []struct {
		name     string
		c        RepoCredential
		answer   fakeAnswer
		wantBody string // "": no request
		wantErr  string
		wantCode string
	}{
		{"read, one pattern", RepoCredential{Scopes: []string{ScopeGitRead}, Repos: []string{"octocat/*"}},
			fakeAnswer{201, `{"worker":` + cred + `,"token":"` + tok + `"}`},
			`{"name":"argocd","scopes":["git:read"],"repos":["octocat/*"]}`, "", ""},
		{"no patterns", RepoCredential{Scopes: []string{ScopeGitRead, ScopeGitWrite}},
			fakeAnswer{201, `{"worker":` + cred + `,"token":"` + tok + `"}`},
			`{"name":"argocd","scopes":["git:read","git:write"]}`, "", ""},
		{"no scope", RepoCredential{Repos: []string{"octocat/*"}}, fakeAnswer{}, "", "needs a scope", ""},
		{"an Arbor without credentials", RepoCredential{Scopes: []string{ScopeGitRead}},
			fakeAnswer{201, `{"worker":` + plain + `,"token":"` + tok + `"}`},
			`{"name":"argocd","scopes":["git:read"]}`, "without scopes", ""},
		{"refused scope", RepoCredential{Scopes: []string{"git:admin"}},
			fakeAnswer{400, `{"error":"invalid_scope","message":"unknown scope \"git:admin\"; use git:read or git:write"}`},
			`{"name":"argocd","scopes":["git:admin"]}`, "git:read or git:write", CodeInvalidScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeWorkersAPI(t, map[string]fakeAnswer{"POST " + PathWorkers: tc.answer})
			ws, _ := workersFor(t, f)
			w, got, err := ws.RegisterRepoCredential(context.Background(), "argocd", tc.c)
			reqs := f.requests()
			switch {
			case tc.wantBody == "" && len(reqs) != 0:
				t.Fatalf("sent %d requests, want none", len(reqs))
			case tc.wantBody != "" && (len(reqs) != 1 || reqs[0].body != tc.wantBody || reqs[0].contentType != "application/json"):
				t.Fatalf("requests %+v, want one with %s", reqs, tc.wantBody)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || (tc.wantCode != "" && !IsCode(err, tc.wantCode)) {
					t.Fatalf("error %v, want %q (code %q)", err, tc.wantErr, tc.wantCode)
				}
				if err != nil && strings.Contains(err.Error(), tok) {
					t.Fatalf("the error quotes the token")
				}
				return
			}
			if err != nil || got != tok || w.ID != apiWorkerID || len(w.Scopes) != 1 || w.Repos[0] != "octocat/*" {
				t.Fatalf("RegisterRepoCredential: %+v %q %v", w, got, err)
			}
		})
	}
}
