package authn_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

// cliBenchFixture is a CLI login on a real bbolt store: user u1, one
// live login f1 and an access token of it.
type cliBenchFixture struct {
	bearer authn.Authenticator
	access string
}

func newCLIBenchFixture(b *testing.B) *cliBenchFixture {
	b.Helper()
	ctx := context.Background()
	st, err := boltdb.Open(filepath.Join(b.TempDir(), "b.db"), boltdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	key := []byte("0123456789abcdef0123456789abcdef-bench")
	toks, err := clitoken.NewSigner(key, clitoken.Options{Issuer: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := clilogin.New(st, clilogin.Options{Tokens: toks, CodeKey: key})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, data.User{ID: "u1", Email: "a@b.test", Login: "a", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	f := data.RefreshFamily{ID: "f1", UserID: "u1", ClientID: "grape", CurrentJTI: "j1", Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.CreateRefreshFamily(ctx, f); err != nil {
		b.Fatal(err)
	}
	sub := clitoken.Subject{UserID: "u1", Email: "a@b.test", Login: "a", Scopes: scope.All}
	access, _, err := toks.Mint(clitoken.TypeAccess, sub, "f1", "a1")
	if err != nil {
		b.Fatal(err)
	}
	return &cliBenchFixture{bearer: authn.CLI(svc), access: access}
}

// BenchmarkBearer is the per-request check of a CLI access token: the
// verified-token cache and the family lookup in a real bbolt store.
func BenchmarkBearer(b *testing.B) {
	f := newCLIBenchFixture(b)
	app := fiber.New()
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.Header.Set("Authorization", "Bearer "+f.access)
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	if id, out, err := f.bearer.Authenticate(c); err != nil || out != authn.Authenticated || id.UserID != "u1" {
		b.Fatalf("Authenticate: %+v %v %v", id, out, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.bearer.Authenticate(c); err != nil {
			b.Fatal(err)
		}
	}
}
