package fakeprovider_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

var linkRE = regexp.MustCompile(`<([^>]+)>;\s*rel="([a-z]+)"`)

func links(h http.Header) map[string]string {
	out := map[string]string{}
	for _, m := range linkRE.FindAllStringSubmatch(h.Get("Link"), -1) {
		out[m[2]] = m[1]
	}
	return out
}

// page is one page of a walk.
type page struct {
	items  []any
	header http.Header
	body   any
}

// walk follows a list to its end the way each provider documents it and
// returns the pages.
func walk(t *testing.T, p *fakeprovider.Provider, first, auth string) []page {
	t.Helper()
	var pages []page
	next := first
	for next != "" {
		if len(pages) > 100 {
			t.Fatal("pagination does not end")
		}
		status, h, body := apiGet(t, next, auth)
		if status != 200 {
			t.Fatalf("GET %s: %d %v", next, status, body)
		}
		pg := page{header: h, body: body}
		switch p.Config().Pagination {
		case fakeprovider.PaginationBitbucket:
			pg.items, _ = field(body, "values").([]any)
			next, _ = field(body, "next").(string)
		case fakeprovider.PaginationGitLab:
			pg.items, _ = body.([]any)
			next = ""
			if n := h.Get("X-Next-Page"); n != "" {
				next = links(h)["next"]
				if !strings.Contains(next, "page="+n) {
					t.Fatalf("X-Next-Page %s but Link next %s", n, next)
				}
			}
		default:
			pg.items, _ = body.([]any)
			next = links(h)["next"]
		}
		pages = append(pages, pg)
	}
	return pages
}

// TestPagination walks each provider's repository list to the end and
// checks counts, page metadata and repository fields.
func TestPagination(t *testing.T) {
	cases := []struct {
		preset   string
		query    string
		total    int
		pages    int
		fields   []string                    // present on every repository
		check    func(first, last page) bool // page metadata
		nameOf   func(repo any) string
		checkOne func(repo any) bool // first repository's fields
	}{
		{"GitHub", "", 250, 9,
			[]string{"id", "name", "full_name", "private", "html_url", "clone_url", "default_branch", "owner"},
			func(first, last page) bool {
				l := links(first.header)
				return strings.Contains(l["last"], "page=9") && strings.Contains(l["last"], "per_page=30") &&
					l["prev"] == "" && links(last.header)["next"] == "" && strings.Contains(links(last.header)["first"], "page=1")
			},
			func(r any) string { return field(r, "full_name").(string) },
			func(r any) bool {
				return field(r, "full_name") == "octocat/repo-001" && field(r, "owner", "login") == "octocat" &&
					strings.HasSuffix(field(r, "clone_url").(string), "/octocat/repo-001.git") && field(r, "default_branch") == "main"
			}},
		{"GitHub", "?per_page=100", 250, 3, nil,
			func(first, last page) bool { return len(first.items) == 100 && len(last.items) == 50 },
			func(r any) string { return field(r, "full_name").(string) }, nil},
		{"GitLab", "?membership=true", 230, 12,
			[]string{"id", "name", "path_with_namespace", "visibility", "http_url_to_repo", "default_branch", "web_url"},
			func(first, last page) bool {
				h := first.header
				return h.Get("X-Page") == "1" && h.Get("X-Total") == "230" && h.Get("X-Total-Pages") == "12" &&
					h.Get("X-Per-Page") == "20" && h.Get("X-Next-Page") == "2" && h.Get("X-Prev-Page") == "" &&
					last.header.Get("X-Next-Page") == "" && last.header.Get("X-Page") == "12" &&
					strings.Contains(links(first.header)["last"], "page=12") && strings.Contains(links(first.header)["next"], "membership=true")
			},
			func(r any) string { return field(r, "path_with_namespace").(string) },
			func(r any) bool { // newest first
				return field(r, "path_with_namespace") == "jsmith/repo-230" && field(r, "visibility") == "internal" &&
					strings.HasSuffix(field(r, "http_url_to_repo").(string), "/jsmith/repo-230.git")
			}},
		{"Bitbucket", "?role=member", 210, 21,
			[]string{"uuid", "full_name", "is_private", "links", "mainbranch"},
			func(first, last page) bool {
				return field(first.body, "size") == float64(210) && field(first.body, "page") == float64(1) &&
					field(first.body, "pagelen") == float64(10) && field(first.body, "previous") == nil &&
					field(last.body, "page") == float64(21) && field(last.body, "next") == nil &&
					strings.HasPrefix(field(first.body, "next").(string), "http://")
			},
			func(r any) string { return field(r, "full_name").(string) },
			func(r any) bool {
				clone, _ := field(r, "links", "clone").([]any)
				return field(r, "full_name") == "atlas/repo-001" && field(r, "mainbranch", "name") == "main" &&
					len(clone) == 2 && field(clone[0], "name") == "https" &&
					strings.HasPrefix(field(clone[0], "href").(string), "http://atlas@") &&
					strings.HasSuffix(field(r, "links", "html", "href").(string), "/atlas/repo-001")
			}},
		{"Bitbucket", "?role=member&pagelen=50", 210, 5, nil,
			func(first, last page) bool { return len(first.items) == 50 && len(last.items) == 10 },
			func(r any) string { return field(r, "full_name").(string) }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.preset+tc.query, func(t *testing.T) {
			t.Parallel()
			pc := presetNamed(tc.preset)
			p := start(t, pc.cfg())
			tok := connect(t, p, pc)
			// Bitbucket lists one workspace at a time: the user's own.
			u := strings.Replace(p.Endpoints().ReposURL, "{workspace}", "atlas", 1)
			pages := walk(t, p, u+tc.query, "Bearer "+tok.AccessToken)
			seen := map[string]bool{}
			for _, pg := range pages {
				for _, r := range pg.items {
					name := tc.nameOf(r)
					if seen[name] {
						t.Errorf("%s listed twice", name)
					}
					seen[name] = true
					for _, f := range tc.fields {
						if _, ok := r.(map[string]any)[f]; !ok {
							t.Errorf("%s lacks %q", name, f)
						}
					}
				}
			}
			if len(seen) != tc.total || len(pages) != tc.pages {
				t.Errorf("walked %d repositories on %d pages, want %d on %d", len(seen), len(pages), tc.total, tc.pages)
			}
			if !tc.check(pages[0], pages[len(pages)-1]) {
				t.Errorf("page metadata wrong: first %v / %v, last %v / %v",
					pages[0].header, truncate(pages[0].body), pages[len(pages)-1].header, truncate(pages[len(pages)-1].body))
			}
			if tc.checkOne != nil && !tc.checkOne(pages[0].items[0]) {
				t.Errorf("first repository = %v", pages[0].items[0])
			}
		})
	}
}

// TestBitbucketEmails: /2.0/user/emails is paginated in the body like
// every Bitbucket list.
func TestBitbucketEmails(t *testing.T) {
	pc := presetNamed("Bitbucket")
	p := start(t, pc.cfg())
	tok := connect(t, p, pc)
	status, _, body := apiGet(t, p.Endpoints().EmailsURL, "Bearer "+tok.AccessToken)
	values, _ := field(body, "values").([]any)
	if status != 200 || len(values) != 2 || field(values[0], "is_primary") != true || field(values[0], "is_confirmed") != true ||
		field(values[1], "is_confirmed") != false || field(values[0], "email") != "atlas@example.com" || field(body, "size") != float64(2) {
		t.Errorf("emails: %d %v", status, body)
	}
	status, _, body = apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken)
	if status != 200 || field(body, "display_name") != "Atlas Tester" || !strings.HasPrefix(field(body, "uuid").(string), "{") {
		t.Errorf("user: %d %v", status, body)
	}
}

// TestMountedHandler: a fake mounted under a prefix by the caller builds
// its absolute links from BaseURL.
func TestMountedHandler(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := fakeprovider.GitHub()
	cfg.BaseURL = srv.URL + "/github"
	cfg.RedirectURIs = []string{callback}
	p := fakeprovider.New(cfg)
	mux.Handle("/github/", http.StripPrefix("/github", p.Handler()))

	if got := p.Endpoints().TokenURL; got != srv.URL+"/github/login/oauth/access_token" {
		t.Fatalf("TokenURL = %s", got)
	}
	tok := connect(t, p, presetNamed("GitHub"))
	status, h, _ := apiGet(t, p.Endpoints().ReposURL, "token "+tok.AccessToken)
	if next := links(h)["next"]; status != 200 || !strings.HasPrefix(next, srv.URL+"/github/user/repos?") {
		t.Errorf("status %d, next link %q", status, next)
	}
}

// truncate shortens a decoded body for failure messages.
func truncate(v any) string {
	if m, ok := v.(map[string]any); ok {
		c := make(map[string]any, len(m))
		for k, x := range m {
			if k != "values" {
				c[k] = x
			}
		}
		v = c
	}
	s := fmt.Sprint(v)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
