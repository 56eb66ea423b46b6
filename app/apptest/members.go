package apptest

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/service/membership"
)

// Members is a fixed membership service for tests of the policy: it
// serves the Members a test sets, judged by the app's compiled policy as
// the real service judges them (Verdict, Visible, VisibleHeader). A user
// it was not told about is a member of nothing, with no address. The
// real service (service/membership) fetches memberships from the
// providers; this one lets a test of the gateway say what they are.
type Members struct {
	mu    sync.RWMutex
	judge membership.Judge
	set   map[string]*membership.Member
	fail  map[string]error
}

// PolicyMembers starts Arbor with m as its membership service; the test
// also sets policy: (Config).
func PolicyMembers(m *Members) Option {
	return func(s *setup) { s.members = m.build }
}

var _ app.MembersFunc = (*Members)(nil).build

func (f *Members) build(judge membership.Judge) (authz.Members, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.judge = judge
	for id, m := range f.set {
		f.set[id] = f.judged(*m)
	}
	return f, nil
}

// judged returns m with the policy's answers, as the service keeps it.
func (f *Members) judged(m membership.Member) *membership.Member {
	if f.judge != nil {
		m.Verdict = f.judge.Admit(&m)
		m.Visible = f.judge.Visible(&m)
		m.VisibleHeader = strings.Join(m.Visible, ",")
	}
	return &m
}

// Set makes userID's standing m (UserID is filled in).
func (f *Members) Set(userID string, m membership.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set == nil {
		f.set = map[string]*membership.Member{}
	}
	m.UserID = userID
	f.set[userID] = f.judged(m)
	delete(f.fail, userID)
}

// Fail makes the lookup of userID fail with err, as a store that cannot
// be read does.
func (f *Members) Fail(userID string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	f.fail[userID] = err
}

// Member implements authz.Members.
func (f *Members) Member(_ context.Context, userID string) (*membership.Member, error) {
	f.mu.RLock()
	m, err := f.set[userID], f.fail[userID]
	f.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if m != nil {
		return m, nil
	}
	if userID == "" {
		return nil, errors.New("apptest: Members asked for no user")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.set[userID]; m != nil {
		return m, nil
	}
	if f.set == nil {
		f.set = map[string]*membership.Member{}
	}
	m = f.judged(membership.Member{UserID: userID})
	f.set[userID] = m
	return m, nil
}
