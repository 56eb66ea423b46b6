package fakeprovider_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/vintner/arbor/sdk/fakeprovider"
)

// TestFailNextToken: injected 503s reach golang.org/x/oauth2 as
// RetrieveErrors, do not consume the code, and stop after n calls.
func TestFailNextToken(t *testing.T) {
	pc := presetNamed("GitLab")
	p := start(t, pc.cfg())
	oc := oauthConfig(p, pc.style, pc.scopes...)
	ctx := ctxTimeout(t, 5*time.Second)
	verifier := oauth2.GenerateVerifier()
	code := login(t, oc, verifier, "")

	p.FailNext(fakeprovider.EndpointToken, 2, http.StatusServiceUnavailable)
	for i := range 2 {
		_, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		retrieveError(t, err, "temporarily_unavailable", 503)
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response.Header.Get("Retry-After") != "1" {
			t.Errorf("attempt %d: Retry-After = %q", i, re.Response.Header.Get("Retry-After"))
		}
	}
	if _, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	calls := p.CallsTo(fakeprovider.EndpointToken)
	if len(calls) != 3 || !calls[0].Injected || !calls[1].Injected || calls[2].Injected || calls[2].Status != 200 {
		t.Errorf("calls = %+v", calls)
	}
}

// TestFailNextFormats: injected API failures use the provider's error
// body; the authorize endpoint answers a page.
func TestFailNextFormats(t *testing.T) {
	cases := []struct {
		preset string
		check  func(body any) bool
	}{
		{"GitHub", func(b any) bool { return field(b, "message") == "Internal Server Error" && field(b, "status") == "500" }},
		{"GitLab", func(b any) bool { return field(b, "message") == "500 Internal Server Error" }},
		{"Bitbucket", func(b any) bool {
			return field(b, "type") == "error" && field(b, "error", "message") == "Internal Server Error"
		}},
		{"Google", func(b any) bool { return field(b, "error") == "server_error" }},
	}
	for _, tc := range cases {
		t.Run(tc.preset, func(t *testing.T) {
			t.Parallel()
			pc := presetNamed(tc.preset)
			p := start(t, pc.cfg())
			tok := connect(t, p, pc)
			p.FailNext(fakeprovider.EndpointUser, 1, http.StatusInternalServerError)
			status, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken)
			if status != 500 || !tc.check(body) {
				t.Errorf("injected: %d %v", status, body)
			}
			if status, _, body := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); status != 200 {
				t.Errorf("after the injected failure: %d %v", status, body)
			}

			p.FailNext(fakeprovider.EndpointAuthorize, 1, http.StatusBadGateway)
			resp, err := noFollow.Get(oauthConfig(p, pc.style).AuthCodeURL("s"))
			if err != nil {
				t.Fatal(err)
			}
			if page := readAll(t, resp); resp.StatusCode != 502 || !strings.Contains(page, "(fake)") {
				t.Errorf("authorize: %d %s", resp.StatusCode, page)
			}
		})
	}
}

// TestHangAndDelay: a hung call holds until the client gives up; a delay
// is applied and can be removed; Close releases hung calls.
func TestHangAndDelay(t *testing.T) {
	pc := presetNamed("Bitbucket")
	p := start(t, pc.cfg())
	oc := oauthConfig(p, pc.style)
	verifier := oauth2.GenerateVerifier()
	code := login(t, oc, verifier, "")

	p.HangNext(fakeprovider.EndpointToken, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	began := time.Now()
	_, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) < 300*time.Millisecond {
		t.Fatalf("hung exchange: %v after %v, want deadline exceeded", err, time.Since(began))
	}
	tok, err := oc.Exchange(ctxTimeout(t, 5*time.Second), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange after the hang: %v", err)
	}

	const delay = 500 * time.Millisecond
	p.SetDelay(fakeprovider.EndpointUser, delay)
	began = time.Now()
	if status, _, _ := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); status != 200 || time.Since(began) < delay {
		t.Errorf("delayed call: %d after %v", status, time.Since(began))
	}
	p.SetDelay(fakeprovider.EndpointUser, 0)
	began = time.Now()
	if status, _, _ := apiGet(t, p.Endpoints().UserURL, "Bearer "+tok.AccessToken); status != 200 || time.Since(began) >= delay {
		t.Errorf("undelayed call: %d after %v", status, time.Since(began))
	}

	// Close releases a call that would hang forever.
	p.HangNext(fakeprovider.EndpointUser, 1)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(p.Endpoints().UserURL + "?access_token=" + url.QueryEscape(tok.AccessToken))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c := p.CallsTo(fakeprovider.EndpointUser); len(c) == 3 {
			if !c[2].Injected || c[2].Status != 0 {
				t.Errorf("hung call recorded as %+v", c[2])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hung call never arrived")
		}
	}
	p.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not release the hung call")
	}
}
