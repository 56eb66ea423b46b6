package manifest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/abi/manifest"
)

var module = []byte("\x00asm\x01\x00\x00\x00")

func valid() map[string]any {
	sum := sha256.Sum256(module)
	return map[string]any{
		"name": "gitea", "display_name": "Gitea", "version": "1.0.0", "abi_version": 1,
		"sha256": hex.EncodeToString(sum[:]), "kind": "git",
		"operations": []string{"authorize", "exchange", "refresh", "repos"},
		"endpoints": map[string]any{"authorize_url": "https://gitea.example/login/oauth/authorize",
			"token_url": "https://gitea.example/login/oauth/access_token", "api_base": "https://gitea.example/api/v1"},
		"scopes":        map[string]any{"git": []string{"read:repository"}},
		"pkce":          true,
		"allowed_hosts": []string{"gitea.example", "cdn.example:8443", "*.gitea.example"},
		"limits":        map[string]any{"memory_pages": 256, "timeout_ms": 5000, "response_bytes": 1 << 20},
	}
}

func encode(m map[string]any) []byte { b, _ := json.Marshal(m); return b }

func TestParseValid(t *testing.T) {
	m, err := manifest.Parse(encode(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if m.Module != "gitea.wasm" || m.DisplayName != "Gitea" || !m.Kind.Git() || m.Kind.Login() {
		t.Errorf("defaults: %+v", m)
	}
	ops, _ := m.OpSet()
	if ops.String() != "authorize,exchange,refresh,repos" {
		t.Errorf("ops %s", ops)
	}
	if err := m.VerifyModule(module); err != nil {
		t.Error(err)
	}
	err = m.VerifyModule(append(module, 0))
	if err == nil || !strings.Contains(err.Error(), "but the manifest says") {
		t.Errorf("tampered module: %v", err)
	}
}

// TestParseGroups: "groups" is an operation (added within v1) and
// scopes.groups its extra scopes.
func TestParseGroups(t *testing.T) {
	m := valid()
	m["kind"] = "both"
	m["operations"] = []string{"authorize", "exchange", "user", "repos", "groups"}
	m["scopes"] = map[string]any{"login": []string{"read:user"}, "groups": []string{"read:org"}}
	got, err := manifest.Parse(encode(m))
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := got.OpSet()
	if !ops.Has(abi.OpGroups) || strings.Join(got.Scopes.Groups, " ") != "read:org" {
		t.Errorf("ops %s, scopes %+v", ops, got.Scopes)
	}
}

func TestParseInvalid(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(map[string]any)
		want string
	}{
		"abi v2":          {func(m map[string]any) { m["abi_version"] = 2; m["new_v2_key"] = 1 }, "manifest declares ABI v2"},
		"abi missing":     {func(m map[string]any) { delete(m, "abi_version") }, "manifest declares ABI v0"},
		"unknown key":     {func(m map[string]any) { m["alowed_hosts"] = []string{} }, `unknown field "alowed_hosts"`},
		"name":            {func(m map[string]any) { m["name"] = "Gitea!" }, "name"},
		"long name":       {func(m map[string]any) { m["name"] = strings.Repeat("a", 33) }, "name"},
		"version":         {func(m map[string]any) { m["version"] = " " }, "version is missing"},
		"sha256":          {func(m map[string]any) { m["sha256"] = "ABC" }, "sha256"},
		"kind":            {func(m map[string]any) { m["kind"] = "" }, "kind"},
		"no exchange":     {func(m map[string]any) { m["operations"] = []string{"authorize", "repos"} }, `must include "exchange"`},
		"git needs repos": {func(m map[string]any) { m["operations"] = []string{"authorize", "exchange"} }, `needs the "repos" operation`},
		"login needs user": {func(m map[string]any) {
			m["kind"] = "both"
		}, `needs the "user" operation`},
		"duplicate op":   {func(m map[string]any) { m["operations"] = []string{"authorize", "exchange", "repos", "repos"} }, "listed twice"},
		"endpoint":       {func(m map[string]any) { m["endpoints"] = map[string]any{"token_url": "ftp://x"} }, "endpoints.token_url"},
		"endpoint creds": {func(m map[string]any) { m["endpoints"] = map[string]any{"token_url": "https://u:p@x/"} }, "user information"},
		"host scheme":    {func(m map[string]any) { m["allowed_hosts"] = []string{"https://x"} }, "no scheme or path"},
		"host wildcard":  {func(m map[string]any) { m["allowed_hosts"] = []string{"a.*.example"} }, "wildcard"},
		"host port":      {func(m map[string]any) { m["allowed_hosts"] = []string{"x.example:0"} }, "port"},
		"module":         {func(m map[string]any) { m["module"] = "dir/x.wasm" }, "file name"},
		"groups scopes without groups": {func(m map[string]any) {
			m["scopes"] = map[string]any{"groups": []string{"read:org"}}
		}, `scopes.groups is for the "groups" operation`},
		"trailing": {nil, "after top-level value"},
	} {
		t.Run(name, func(t *testing.T) {
			m := valid()
			b := encode(m)
			if tc.edit != nil {
				tc.edit(m)
				b = encode(m)
			} else {
				b = append(b, []byte(" {}")...)
			}
			_, err := manifest.Parse(b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.HasPrefix(name, "abi") && !errors.Is(err, abi.ErrABIVersion) {
				t.Errorf("%v does not wrap abi.ErrABIVersion", err)
			}
		})
	}
}
