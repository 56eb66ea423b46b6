package app_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vintner/arbor/app"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/service/membership"
)

// A policy with no membership service to judge users by stops start-up
// with a configuration error (Arbor fails closed rather than admit
// everyone); with one, New hands it the compiled policy.
func TestPolicyNeedsMembers(t *testing.T) {
	environ, _ := tlsEnviron(t, 0o600)
	environ = append(environ, "ARBOR_POLICY_ALLOW_EMAIL_DOMAINS=example.com")
	cfg, err := config.Load(config.Source{Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard})
	if _, ok := errors.AsType[*app.ConfigError](err); !ok || a != nil || !strings.Contains(err.Error(), "membership service") {
		t.Fatalf("New with a policy and no Members = %v, %v; want a *ConfigError", a, err)
	}

	var judge membership.Judge
	a, err = app.New(t.Context(), cfg, app.Options{Environ: environ, Stderr: io.Discard,
		Members: func(j membership.Judge) (authz.Members, error) {
			judge = j
			return nil, errors.New("membership service down")
		}})
	if err == nil || a != nil || !strings.Contains(err.Error(), "membership service down") {
		t.Fatalf("New with a failing Members = %v, %v", a, err)
	}
	if judge == nil {
		t.Fatal("Members was not given the compiled policy")
	}
	if v := judge.Admit(&membership.Member{Emails: []string{"a@example.com"}}); !v.Admitted() {
		t.Errorf("the policy refuses an address at example.com: %+v", v)
	}
	if v := judge.Admit(&membership.Member{Emails: []string{"a@example.org"}}); v.Code != membership.CodeNotAllowed {
		t.Errorf("the policy admits an address at example.org: %+v", v)
	}
}
