package workers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/workers"
)

func TestCleanGrant(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   workers.Grant
		want workers.Grant
		err  error
	}{
		{"worker", workers.Grant{}, workers.Grant{}, nil},
		{"read", workers.Grant{Scopes: []string{"git:read"}}, workers.Grant{Scopes: []string{"git:read"}}, nil},
		{"write implies read", workers.Grant{Scopes: []string{"git:write"}}, workers.Grant{Scopes: []string{"git:read", "git:write"}}, nil},
		{"duplicates", workers.Grant{Scopes: []string{" git:read", "git:read", "git:write", "git:write"}}, workers.Grant{Scopes: []string{"git:read", "git:write"}}, nil},
		{"patterns cleaned", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"OctoCat/*", "octocat/*", "group/**", "github:octocat/hello.git"}},
			workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"octocat/*", "group/**", "github:octocat/hello"}}, nil},
		{"unknown scope", workers.Grant{Scopes: []string{"repo"}}, workers.Grant{}, workers.ErrBadScope},
		{"patterns without scope", workers.Grant{Repos: []string{"a/b"}}, workers.Grant{}, workers.ErrBadScope},
		{"one segment", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"octocat"}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"dot dot", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"octocat/../x"}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"empty segment", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"octocat//x"}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"inner **", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"**/x"}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"bad glob", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"a/[x"}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"space", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"a/b c"}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"empty provider", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{":a/b"}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"too long", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"a/" + strings.Repeat("b", 300)}}, workers.Grant{}, workers.ErrBadRepoPattern},
		{"too many", workers.Grant{Scopes: []string{"git:read"}, Repos: slices.Repeat([]string{"a/b"}, 33)}, workers.Grant{}, workers.ErrBadRepoPattern},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := workers.CleanGrant(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err == nil && (!slices.Equal(got.Scopes, tc.want.Scopes) || !slices.Equal(got.Repos, tc.want.Repos)) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMatchRepo(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		provider string
		repo     string
		want     bool
	}{
		{nil, "github", "any/thing", true},
		{[]string{"octocat/*"}, "github", "octocat/hello-world", true},
		{[]string{"octocat/*"}, "github", "OctoCat/Hello-World", true},
		{[]string{"octocat/*"}, "github", "octocat/a/b", false},
		{[]string{"octocat/*"}, "github", "other/hello-world", false},
		{[]string{"octocat/hello-*"}, "github", "octocat/hello-world", true},
		{[]string{"octocat/hello-*"}, "github", "octocat/bye", false},
		{[]string{"group/**"}, "gitlab", "group/app", true},
		{[]string{"group/**"}, "gitlab", "group/sub/app", true},
		{[]string{"group/**"}, "gitlab", "group", false},
		{[]string{"group/sub/*"}, "gitlab", "group/sub/app", true},
		{[]string{"github:octocat/*"}, "github", "octocat/x", true},
		{[]string{"github:octocat/*"}, "gitlab", "octocat/x", false},
		{[]string{"a/b", "octocat/*"}, "github", "octocat/x", true},
	} {
		if got := workers.MatchRepo(tc.patterns, tc.provider, tc.repo); got != tc.want {
			t.Errorf("MatchRepo(%q, %s, %s) = %v, want %v", tc.patterns, tc.provider, tc.repo, got, tc.want)
		}
	}
}

// A repository credential is accepted as HTTP Basic on the Git proxy
// (AuthenticateRepo) and nowhere as a worker; a worker's token the other
// way round; rotation and revocation work as for workers.
func TestRepoCredentialIsNotAWorker(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cred, credTok, err := f.svc.RegisterWith(ctx, "alice", "argocd", workers.Grant{Scopes: []string{"git:read"}, Repos: []string{"octocat/*"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cred.Scopes, []string{"git:read"}) || !slices.Equal(cred.Repos, []string{"octocat/*"}) {
		t.Fatalf("registered %+v", cred)
	}
	w, wTok, err := f.svc.Register(ctx, "alice", "runner")
	if err != nil {
		t.Fatal(err)
	}
	repo := func(id, tok string) (workers.Identity, error) {
		return f.svc.AuthenticateRepo(ctx, []byte(id), []byte(tok), loopback)
	}
	id, err := repo(cred.ID, credTok)
	if err != nil || id.UserID != "alice" || !id.CanFetch() || id.CanPush() || !id.AllowsRepo("github", "octocat/x") || id.AllowsRepo("github", "other/x") {
		t.Fatalf("AuthenticateRepo: %+v, %v", id, err)
	}
	if _, err := authenticate(f.svc, cred.ID, credTok); !errors.Is(err, workers.ErrUnauthorized) {
		t.Fatalf("a repository credential as a worker: %v, want ErrUnauthorized", err)
	}
	if code, _ := f.call(hdr(cred.ID, credTok)); code != 401 {
		t.Fatalf("a repository credential on a worker route: %d", code)
	}
	if _, err := repo(w.ID, wTok); !errors.Is(err, workers.ErrUnauthorized) {
		t.Fatalf("a worker's token on the Git proxy: %v, want ErrUnauthorized", err)
	}
	if _, err := repo(w.ID, credTok); !errors.Is(err, workers.ErrUnauthorized) {
		t.Fatalf("the credential's token with another id: %v", err)
	}
	_, newTok, err := f.svc.Rotate(ctx, "alice", cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo(cred.ID, credTok); !errors.Is(err, workers.ErrUnauthorized) {
		t.Fatalf("the rotated token: %v", err)
	}
	if _, err := repo(cred.ID, newTok); err != nil {
		t.Fatalf("the new token: %v", err)
	}
	if err := f.svc.Revoke(ctx, "alice", cred.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := repo(cred.ID, newTok); !errors.Is(err, workers.ErrUnauthorized) {
		t.Fatalf("after revocation: %v", err)
	}
	// The audit trail tells the credential's life from the worker's.
	if _, _, err := f.svc.Rotate(ctx, "alice", w.ID); err != nil {
		t.Fatal(err)
	}
	events, err := f.store.ListAudit(ctx, data.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Action+" "+e.Target)
	}
	want := []string{
		"repo_credential.register worker:" + cred.ID, "worker.register worker:" + w.ID,
		"repo_credential.rotate worker:" + cred.ID, "repo_credential.revoke worker:" + cred.ID,
		"worker.rotate worker:" + w.ID,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
