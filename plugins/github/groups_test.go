package github

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

// TestAppendTeams: a /user/teams page becomes "org/slug" in lower case;
// a team without its organisation or slug is skipped, and nested objects
// that also say "slug" or "login" do not confuse it.
func TestAppendTeams(t *testing.T) {
	body := `[{"id":1,"slug":"Platform","parent":{"slug":"not-this"},"organization":{"login":"Vintner","id":9}},
		{"id":2,"slug":"ops"},
		{"id":3,"organization":{"login":"acme"}},
		{"slug":"infra","organization":{"login":"acme","owner":{"login":"not-this"}}}]`
	got, err := appendTeams([]string{"x/y"}, []byte(body))
	if err != nil || !slices.Equal(got, []string{"x/y", "vintner/platform", "acme/infra"}) {
		t.Fatalf("appendTeams = %q, %v", got, err)
	}
	if _, err := appendTeams(nil, []byte(`{"message":"Not Found"}`)); err == nil {
		t.Error("an object read as a team list")
	}
}

// TestScopeHint: only a listing's plain 403 becomes the missing-scope
// explanation; a rate limit or another error passes through.
func TestScopeHint(t *testing.T) {
	forbidden := &plugin.Error{Code: abi.CodeProviderError, Status: 403, Message: "Forbidden"}
	var e *plugin.Error
	if err := scopeHint(forbidden, "/user/orgs"); !errors.As(err, &e) || e.Status != 403 || !strings.Contains(e.Message, "read:org") {
		t.Errorf("403: %v", err)
	}
	limited := &plugin.Error{Code: abi.CodeRateLimited, Status: 403, RetryAfter: 60}
	if err := scopeHint(limited, "/user/orgs"); err != limited {
		t.Errorf("rate limit: %v", err)
	}
	other := &plugin.Error{Code: abi.CodeProviderError, Status: 500}
	if err := scopeHint(other, "/user/teams"); err != other {
		t.Errorf("500: %v", err)
	}
}
