package membership_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/etcd"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/service/membership"
)

func openEtcd(tb testing.TB, c *etcdtest.Cluster) *etcd.Store {
	tb.Helper()
	s, err := etcd.Open(context.Background(), etcd.Config{Endpoints: c.Endpoints(), Root: "/arbor/"},
		etcd.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Two replicas on one etcd cluster: a Member cached on B follows a write
// made on A (an operator disabling the user, a re-check removing a group)
// within a second, through WatchUsers.
func TestMemberFollowsOtherReplica(t *testing.T) {
	c := etcdtest.Start(t)
	ctx := context.Background()
	a, b := openEtcd(t, c), openEtcd(t, c)
	svcB, err := membership.New(membership.Options{Store: b, Judge: teamRule,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svcB.Close)
	if err := a.CreateUser(ctx, data.User{ID: "alice", CreatedAt: time.Now(),
		Memberships: data.Memberships{Groups: []string{"github:vintner/platform"}}}); err != nil {
		t.Fatal(err)
	}
	verdictOnB := func() string {
		t.Helper()
		m, err := svcB.Member(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return m.Verdict.Code
	}
	if v := verdictOnB(); v != "" {
		t.Fatalf("on B before: %q", v)
	}
	for _, step := range []struct {
		edit func(*data.User)
		want string
	}{
		{func(u *data.User) { u.Memberships.Groups = nil }, membership.CodeNotAllowed},
		{func(u *data.User) { u.Memberships.Groups = []string{"github:vintner/platform"} }, ""},
		{func(u *data.User) { u.Disabled = true }, membership.CodeAccountDisabled},
	} {
		if _, err := a.UpdateUser(ctx, "alice", func(u data.User) (data.User, error) { step.edit(&u); return u, nil }); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for verdictOnB() != step.want {
			if time.Now().After(deadline) {
				t.Fatalf("B still answers %q a second after A's write, want %q", verdictOnB(), step.want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Replicas share the re-check's lock: two replicas re-checking the same
// due users at once ask the provider once per user, not twice.
func TestRecheckOnceAcrossReplicas(t *testing.T) {
	e := groupsEnv(t)
	ctx := context.Background()
	_, uid := e.signIn("github", "octocat")
	other, err := membership.New(e.opts) // a second service on the same store
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	teams := func() int {
		return len(e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointTeams)) + len(e.fakes.Fakes["github"].CallsTo(fakeprovider.EndpointOrgMembership))
	}
	before := teams()
	e.clock.Advance(interval)
	var wg sync.WaitGroup
	for _, s := range []*membership.Service{e.svc, other} {
		wg.Go(func() {
			if err := s.Recheck(ctx, uid); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	single := teams() - before
	if single == 0 {
		t.Fatal("nobody asked the provider")
	}
	// The same once more, one replica alone, for comparison.
	before = teams()
	e.clock.Advance(interval)
	if err := e.svc.Recheck(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if alone := teams() - before; alone != single {
		t.Fatalf("two replicas at once made %d groups calls, one alone %d", single, alone)
	}
}
