package authn_test

import (
	"encoding/base64"
	"net/http"
	"slices"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/service/workers"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestRepo is the Git proxy's rule: a repository credential as HTTP Basic
// (user name = its id), and every other credential, or none, 401
// repo_unauthorized with WWW-Authenticate: Basic so that git asks.
func TestRepo(t *testing.T) {
	e := newEnv(t)
	var grant workers.Identity
	classRepo := func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error) {
		id, g, err := ch.Repo(c)
		grant = g
		return id, err == nil, err
	}
	refused := result{status: http.StatusUnauthorized, code: authn.CodeRepoUnauthorized, www: `Basic realm="arbor", charset="UTF-8"`}
	for _, tc := range []struct {
		name string
		cr   creds
		want result
	}{
		{"credential", creds{auth: basic(e.repoID, e.repoTok)}, result{kind: authn.KindRepo}},
		{"scheme in lower case", creds{auth: "basic " + basic(e.repoID, e.repoTok)[6:]}, result{kind: authn.KindRepo}},
		{"none", creds{}, refused},
		{"user name not the id", creds{auth: basic("argocd", e.repoTok)}, refused},
		{"wrong token", creds{auth: basic(e.repoID, e.workerBad)}, refused},
		{"no colon", creds{auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(e.repoTok))}, refused},
		{"not base64", creds{auth: "Basic %%%"}, refused},
		{"bearer", creds{bearer: e.bearerAll}, refused},
		{"worker token as Basic", creds{auth: basic(e.workerID, e.workerTok)}, refused},
		{"worker headers", creds{workerID: e.workerID, workerTok: e.workerTok}, refused},
		{"session cookie", creds{cookie: e.cookie}, refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grant = workers.Identity{}
			got := e.do(t, tc.cr, func(c *fiber.Ctx) (authn.Identity, bool, error) { return classRepo(c, e.chain) })
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.want.kind == authn.KindRepo && (!slices.Equal(grant.Scopes, []string{"git:read"}) || !slices.Equal(grant.Repos, []string{"octocat/*"})) {
				t.Fatalf("grant %+v", grant)
			}
		})
	}
	// The credential is no worker.
	if got := e.do(t, creds{workerID: e.repoID, workerTok: e.repoTok}, func(c *fiber.Ctx) (authn.Identity, bool, error) { return classWorker(c, e.chain) }); got.status != http.StatusUnauthorized {
		t.Fatalf("a repository credential on a worker route: %+v", got)
	}
}
