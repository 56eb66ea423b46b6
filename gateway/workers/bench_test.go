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
	"github.com/vintner/arbor/gateway/workers"
)

// BenchmarkAuthenticate is the per-request worker check: format and
// checksum, SHA-256, one bbolt read, constant-time compare.
func BenchmarkAuthenticate(b *testing.B) {
	st, err := boltdb.Open(filepath.Join(b.TempDir(), "w.db"), boltdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := workers.New(st, workers.Options{FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer svc.Close()
	ctx := context.Background()
	st.CreateUser(ctx, data.User{ID: "u1", CreatedAt: time.Now()})
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
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authenticate(c); err != nil {
			b.Fatal(err)
		}
	}
}
