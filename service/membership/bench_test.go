package membership_test

import (
	"context"
	"testing"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/membership"
)

// BenchmarkMemberHit is the per-request cost of a user's standing with
// the Member cached: what the authentication chain pays on every request
// of a session, CLI token or worker.
func BenchmarkMemberHit(b *testing.B) {
	e := newEnv(b, membership.Options{Judge: teamRule}, nil)
	e.user("u1", "boss@example.com", data.Memberships{Groups: []string{"github:vintner/platform"}})
	ctx := context.Background()
	if _, err := e.svc.Member(ctx, "u1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m, err := e.svc.Member(ctx, "u1"); err != nil || !m.Verdict.Admitted() {
				b.Fatal(m, err)
			}
		}
	})
}
