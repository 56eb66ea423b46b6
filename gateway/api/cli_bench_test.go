package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/boltdb"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/api"
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/gateway/authz/scope"
	"github.com/vintner/arbor/service/clilogin"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

type cliBenchFixture struct {
	store  *boltdb.Store
	svc    *clilogin.Service
	api    *api.CLI
	toks   *clitoken.Signer
	access string
	fam    data.RefreshFamily
	sub    clitoken.Subject
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
	ss, _ := sessiontoken.NewSigner(key, sessiontoken.Options{Issuer: "bench", Audience: "arbor-session"})
	sessions, err := session.New(st, session.Options{Signer: ss, CSRFKey: key})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sessions.Close)
	svc, _, cliAPI := newCLIParts(b, st, sessions, "http://bench", clilogin.Options{Tokens: toks, CodeKey: key})
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
	return &cliBenchFixture{store: st, svc: svc, api: cliAPI, toks: toks, access: access, fam: f, sub: sub}
}

// serve runs the API behind a real gateway on 127.0.0.1 (the gateway reads
// and caps a body before a handler sees it: reqbody) and returns its URL.
func (f *cliBenchFixture) serve(b *testing.B) string {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := gateway.New(gateway.Options{Logger: quiet, AccessLogger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Mount(gateway.ClassAPI, f.api.Routes); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// BenchmarkRefreshLatency is one rotation through HTTP on loopback: verify,
// rotate the family (an fsynced write), mint two tokens.
func BenchmarkRefreshLatency(b *testing.B) {
	f := newCLIBenchFixture(b)
	base := f.serve(b)
	url := base + api.PathCLIRefresh
	refresh, _, _ := f.toks.Mint(clitoken.TypeRefresh, f.sub, "f1", "j1")
	for b.Loop() {
		body, _ := json.Marshal(map[string]string{"refresh_token": refresh})
		res, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var out map[string]any
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || json.Unmarshal(raw, &out) != nil {
			b.Fatalf("refresh: %d %s", res.StatusCode, raw)
		}
		refresh = out["refresh_token"].(string)
	}
}

// BenchmarkExchangeLatency is one exchange through HTTP on loopback: read
// the device code, consume it (an fsynced write), create the family (and
// its audit event), mint the tokens.
func BenchmarkExchangeLatency(b *testing.B) {
	f := newCLIBenchFixture(b)
	base := f.serve(b)
	url := base + api.PathCLIExchange
	ctx := context.Background()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		dc := fmt.Sprintf("bench-device-code-%08d", i)
		now := time.Now().UTC()
		// Opened by u1 and approved through the service: the code is
		// stored only as its HMAC.
		if err := f.store.CreateDeviceCode(ctx, data.DeviceCode{Code: dc, Kind: data.DeviceKindCLI, State: data.DevicePending,
			UserID: "u1", ClientID: "grape", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		code, _, err := f.svc.Approve(ctx, clilogin.From{}, "u1", dc)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"device_code": dc, "verification_code": strings.ToLower(code)})
		b.StartTimer()
		res, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("exchange: %d %s", res.StatusCode, raw)
		}
	}
}
