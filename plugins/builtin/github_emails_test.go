package builtin_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// syncBuffer is a bytes.Buffer for a logger that several goroutines use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGitHubEmailScopeLogged: when /user/emails is refused for want of a
// scope, the plugin's log says which scope to grant, beside the SDK's
// warning that the address is treated as unverified.
func TestGitHubEmailScopeLogged(t *testing.T) {
	var logs syncBuffer
	e := plugintest.StartForTest(t, plugintest.Suite{Plugin: plugin(t, "github"), Fake: fakeprovider.GitHubOAuthApp(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	cfg := e.Config
	cfg.LoginScopes = []string{"read:user"}
	p, err := e.Load(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.LoginWith(t.Context(), p, "octocat", abi.PurposeLogin)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := p.User(t.Context(), tok.AccessToken); err != nil || u.EmailVerified {
		t.Fatalf("without user:email: %+v, %v", u, err)
	}
	out := logs.String()
	if !strings.Contains(out, "grant the user:email scope") || !strings.Contains(out, "treated as unverified") {
		t.Errorf("the log does not say to grant user:email:\n%s", out)
	}
	if strings.Contains(out, tok.AccessToken) {
		t.Error("the log carries the access token")
	}
}
