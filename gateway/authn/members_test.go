package authn_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/membership"
)

// fixedMembers serves one Member per user, or an error.
type fixedMembers struct {
	mu   sync.Mutex
	m    map[string]*membership.Member
	err  error
	asks int
}

func (f *fixedMembers) Member(_ context.Context, userID string) (*membership.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asks++
	if f.err != nil {
		return nil, f.err
	}
	if m, ok := f.m[userID]; ok {
		return m, nil
	}
	return nil, fmt.Errorf("no member %q", userID)
}

// TestChainPolicy: with Members, every route class but Session and
// Service refuses a user the policy refuses (403 and the Verdict's code),
// whether the credential is a session, a CLI token or a worker (which
// acts for its owner); a Member that cannot be read is 503, except on a
// public upstream route, which then serves without identity.
func TestChainPolicy(t *testing.T) {
	e := newEnv(t)
	members := &fixedMembers{m: map[string]*membership.Member{}}
	cfg := e.cfg
	cfg.Members = members
	ch, err := authn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.ConsultsMembers() || e.chain.ConsultsMembers() {
		t.Fatal("ConsultsMembers")
	}
	session := creds{cookie: e.cookie}
	cli := creds{bearer: e.bearerAll}
	worker := creds{workerID: e.workerID, workerTok: e.workerTok}
	classes := []struct {
		name  string
		class func(c *fiber.Ctx, ch *authn.Chain) (authn.Identity, bool, error)
		cr    []creds
	}{
		{"upstream", classUpstream, []creds{session, cli}},
		{"public", classPublic, []creds{session, cli}},
		{"worker", classWorker, []creds{worker}},
		{"api", classProviders, []creds{session, cli}},
		{"who", classWho, []creds{session, cli}},
		{"page", classPage, []creds{session}},
		{"form", classForm, []creds{session}},
	}
	admitted := &membership.Member{UserID: "alice", Groups: []string{"github:vintner"}}
	for _, standing := range []struct {
		name string
		m    *membership.Member
		err  error
		want func(class string) result
	}{
		{"admitted", admitted, nil, nil},
		{"not allowed", &membership.Member{UserID: "alice", Verdict: membership.Verdict{Code: membership.CodeNotAllowed, Rule: "r", Fix: "f"}}, nil,
			func(string) result { return result{status: 403, code: membership.CodeNotAllowed} }},
		{"disabled", &membership.Member{UserID: "alice", Disabled: true, Verdict: membership.Verdict{Code: membership.CodeAccountDisabled}}, nil,
			func(string) result { return result{status: 403, code: membership.CodeAccountDisabled} }},
		{"store failure", nil, fmt.Errorf("reading user: %w", data.ErrUnavailable), func(class string) result {
			if class == "public" {
				return result{}
			}
			return result{status: 503, code: httperr.CodeStoreUnavailable}
		}},
	} {
		members.mu.Lock()
		members.m["alice"], members.err = standing.m, standing.err
		members.mu.Unlock()
		for _, cl := range classes {
			for _, cr := range cl.cr {
				var got authn.Identity
				res := e.do(t, cr, func(c *fiber.Ctx) (authn.Identity, bool, error) {
					id, ok, err := cl.class(c, ch)
					got = id
					return id, ok, err
				})
				name := standing.name + "/" + cl.name + "/" + res.kind.String()
				if standing.want == nil {
					if res.status != 0 || res.kind == authn.KindNone {
						t.Errorf("%s: %+v, want admitted", name, res)
					} else if got.Member != admitted {
						t.Errorf("%s: identity's Member %v, want the one Members gave", name, got.Member)
					}
					continue
				}
				want := standing.want(cl.name)
				if res.status != want.status || res.code != want.code || (want.status == 0 && res.kind != authn.KindNone) {
					t.Errorf("%s (%+v): got %+v, want %+v", standing.name+"/"+cl.name, cr, res, want)
				}
			}
		}
	}

	// Session (sign-in's own steps, sign-out) and the service route never
	// consult Members.
	members.mu.Lock()
	members.err, members.asks = errors.New("must not be asked"), 0
	members.mu.Unlock()
	if res := e.do(t, session, func(c *fiber.Ctx) (authn.Identity, bool, error) {
		id, out, err := ch.Session(c)
		return id, out == authn.Authenticated, err
	}); res.kind != authn.KindSession {
		t.Errorf("Session with a failing Members: %+v", res)
	}
	if res := e.do(t, creds{bearer: serviceSecret}, func(c *fiber.Ctx) (authn.Identity, bool, error) { return classService(c, ch) }); res.kind != authn.KindService {
		t.Errorf("Service: %+v", res)
	}
	if members.asks != 0 {
		t.Errorf("Members asked %d times by Session and Service", members.asks)
	}
}
