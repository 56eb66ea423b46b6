package clilogin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

// TestLoginWithoutHTTP drives a Grape login through the service alone,
// with a real bbolt store: each step answers with the service's own
// error, and the same refusals as over HTTP (gateway/api's tests).
func TestLoginWithoutHTTP(t *testing.T) {
	ctx := context.Background()
	st, _ := testStore(t)
	now := time.Date(2031, 3, 14, 15, 9, 26, 0, time.UTC)
	clock := func() time.Time { return now }
	toks, err := clitoken.NewSigner(testKey, clitoken.Options{Issuer: "clilogin-test", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(st, Options{Tokens: toks, CodeKey: testKey, Now: clock, MaxPendingPerAddress: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, data.User{ID: "u1", Email: "u1@example.test", Login: "u1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	from := From{Addr: "192.0.2.1", UserAgent: "grape/1.0\x00", RequestID: "r1"}
	const dc = "0123456789abcdef-device"

	if err := s.Start(ctx, from, StartRequest{DeviceCode: "short"}); !errors.Is(err, ErrInvalidDeviceCode) {
		t.Fatalf("Start of a short device code: %v", err)
	}
	if err := s.Start(ctx, from, StartRequest{DeviceCode: dc, CodeChallenge: "nope"}); !errors.Is(err, ErrInvalidChallenge) {
		t.Fatalf("Start with a bad challenge: %v", err)
	}
	if _, err := s.Open(ctx, "u1", dc); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("Open before Start: %v", err)
	}
	if err := s.Start(ctx, from, StartRequest{DeviceCode: dc, ClientInfo: map[string]string{"host": "laptop", "arbor:address": "forged"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, from, StartRequest{DeviceCode: dc}); !errors.Is(err, ErrDeviceCodeExists) {
		t.Fatalf("Start of a device code in use: %v", err)
	}
	var be *BusyError
	if err := s.Start(ctx, from, StartRequest{DeviceCode: dc + "-2"}); !errors.As(err, &be) || be.Global || be.RetryAfter <= 0 || be.RetryAfter > time.Minute {
		t.Fatalf("second pending Start from one address (cap 1): %v %+v", err, be)
	}
	if total, byAddr := s.PendingSlots(from.Addr); total != 1 || byAddr != 1 {
		t.Fatalf("PendingSlots: %d, %d", total, byAddr)
	}

	req, err := s.Open(ctx, "u1", dc)
	if err != nil {
		t.Fatal(err)
	}
	want := Machine{Address: "192.0.2.1", UserAgent: "grape/1.0", Info: []KV{{"host", "laptop"}}}
	if req.Machine.Address != want.Address || req.Machine.UserAgent != want.UserAgent || len(req.Machine.Info) != 1 || req.Machine.Info[0] != want.Info[0] {
		t.Fatalf("Open: machine %+v, want %+v", req.Machine, want)
	}
	if _, err := s.Open(ctx, "u2", dc); !errors.Is(err, ErrOtherUser) {
		t.Fatalf("Open by another user: %v", err)
	}
	if _, err := s.Exchange(ctx, from, dc, "", ""); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("poll before approval: %v", err)
	}
	if _, _, err := s.Approve(ctx, from, "u2", dc); !errors.Is(err, ErrOtherUser) {
		t.Fatalf("Approve by another user: %v", err)
	}
	code, expires, err := s.Approve(ctx, from, "u1", dc)
	if err != nil || len(code) != CodeLength || !expires.Equal(now.Add(DefaultFlowTTL)) {
		t.Fatalf("Approve: %q %v %v", code, expires, err)
	}
	if total, _ := s.PendingSlots(from.Addr); total != 0 {
		t.Fatalf("an approved request holds a slot")
	}
	wrong := "AAAAAA"
	if code == wrong {
		wrong = "BBBBBB"
	}
	if _, err := s.Exchange(ctx, from, dc, wrong, ""); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("Exchange with a wrong code: %v", err)
	}
	tok, err := s.Exchange(ctx, from, dc, strings.ToLower(code), "")
	if err != nil || tok.Access == "" || tok.Refresh == "" || tok.User.ID != "u1" || tok.ExpiresIn != time.Hour {
		t.Fatalf("Exchange: %+v %v", tok, err)
	}
	if _, err := s.Exchange(ctx, from, dc, code, ""); !errors.Is(err, ErrUsed) {
		t.Fatalf("second Exchange: %v", err)
	}
	if _, err := s.Authenticate(ctx, tok.Access); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}

	// Refresh rotates; the old token again is reuse and ends the login.
	next, err := s.Refresh(ctx, from, tok.Refresh, "")
	if err != nil || next.Refresh == tok.Refresh {
		t.Fatalf("Refresh: %+v %v", next, err)
	}
	if _, err := s.Refresh(ctx, from, tok.Refresh, ""); !errors.Is(err, ErrReused) || !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("Refresh with the rotated token: %v", err)
	}
	if _, err := s.Refresh(ctx, from, next.Refresh, ""); !errors.Is(err, ErrLoginRevoked) {
		t.Fatalf("Refresh after reuse: %v", err)
	}
	if _, err := s.Authenticate(ctx, tok.Access); !errors.Is(err, ErrBadBearer) {
		t.Fatalf("Authenticate after reuse: %v", err)
	}
	if err := s.Logout(ctx, from, "", "not a token"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("Logout without a token: %v", err)
	}
	events, err := st.ListAudit(ctx, data.AuditQuery{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		if e.RequestID != "r1" || e.IP != "192.0.2.1" {
			t.Errorf("audit %s: request id %q, ip %q", e.Action, e.RequestID, e.IP)
		}
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, " "); got != "cli.approve cli.login cli.refresh_reuse" {
		t.Errorf("audit trail: %s", got)
	}

	// Expired: told so, distinctly.
	const dc2 = "0123456789abcdef-second"
	if err := s.Start(ctx, From{Addr: "192.0.2.2"}, StartRequest{DeviceCode: dc2}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DefaultFlowTTL)
	if _, err := s.Open(ctx, "u1", dc2); !errors.Is(err, ErrExpired) {
		t.Fatalf("Open after 10 minutes: %v", err)
	}
	if _, err := s.Exchange(ctx, from, dc2, "", ""); !errors.Is(err, ErrExpired) {
		t.Fatalf("poll after 10 minutes: %v", err)
	}
}
