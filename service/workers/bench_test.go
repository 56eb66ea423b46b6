package workers_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/data/etcd/etcdtest"
	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/service/workers"
)

// BenchmarkAuthenticate is the per-request worker check on bbolt, once
// the worker is cached: format and checksum, SHA-256, a cache hit,
// constant-time compare.
func BenchmarkAuthenticate(b *testing.B) {
	st, err := boltdb.Open(filepath.Join(b.TempDir(), "w.db"), boltdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	benchmarkAuthenticate(b, st, func(ctx context.Context) error {
		return st.CreateUser(ctx, data.User{ID: "u1", CreatedAt: time.Now()})
	})
}

func benchmarkAuthenticate(b *testing.B, st workers.Store, createUser func(context.Context) error) {
	svc := workers.New(st, workers.Options{FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer svc.Close()
	ctx := context.Background()
	if err := createUser(ctx); err != nil {
		b.Fatal(err)
	}
	w, tok, err := svc.Register(ctx, "u1", "runner")
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New()
	fctx := &fasthttp.RequestCtx{}
	fctx.Request.Header.Set(workers.HeaderID, w.ID)
	fctx.Request.Header.Set(workers.HeaderToken, tok)
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	a := authn.Workers(svc)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Authenticate(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateEtcd is the per-request worker check on the etcd
// backend, once the worker is cached: no round trip.
func BenchmarkAuthenticateEtcd(b *testing.B) {
	st := openEtcd(b, etcdtest.Start(b))
	benchmarkAuthenticate(b, st, func(ctx context.Context) error {
		return st.CreateUser(ctx, data.User{ID: "u1", CreatedAt: time.Now()})
	})
}
