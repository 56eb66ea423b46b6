package fakeprovider_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// TestRevokeIgnoresExpired reproduces Doorkeeper before 5.8.1: once the
// access token has expired, revoking it or its refresh token answers 200
// and revokes nothing; while it is live, revocation works.
func TestRevokeIgnoresExpired(t *testing.T) {
	creds := []string{"fake-client-id", "fake-client-secret"}
	for _, old := range []bool{false, true} {
		clk := newClock()
		cfg := fakeprovider.GitLab()
		cfg.RevokeIgnoresExpired = old
		cfg.Now = clk.Now
		p := start(t, cfg)
		pc := presetNamed("GitLab")

		live := connect(t, p, pc)
		resp, body := postForm(t, p.Endpoints().RevokeURL, url.Values{"token": {live.RefreshToken}, "token_type_hint": {"refresh_token"}}, creds, nil)
		if resp.StatusCode != 200 || p.ValidRefreshToken(live.RefreshToken) || p.ValidAccessToken(live.AccessToken) {
			t.Fatalf("old=%v: revoking a live grant: %d %s; refresh still valid %v", old, resp.StatusCode, body, p.ValidRefreshToken(live.RefreshToken))
		}

		tok := connect(t, p, pc)
		clk.Advance(3 * time.Hour) // past the 2-hour access token
		for _, tt := range []struct{ tok, hint string }{{tok.RefreshToken, "refresh_token"}, {tok.AccessToken, "access_token"}} {
			resp, body := postForm(t, p.Endpoints().RevokeURL, url.Values{"token": {tt.tok}, "token_type_hint": {tt.hint}}, creds, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("old=%v: revoking the %s: %d %s", old, tt.hint, resp.StatusCode, body)
			}
		}
		if got := p.ValidRefreshToken(tok.RefreshToken); got != old {
			t.Errorf("old=%v: after revoking an expired grant the refresh token is valid=%v, want %v", old, got, old)
		}
	}
}
