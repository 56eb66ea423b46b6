package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// The plugin passes the conformance kit against the fake Gitee of
// examples/fakes/gitee.yaml, with nothing in front of it: the fake refuses
// token requests with their parameters outside the query, a refresh with
// client credentials and API calls without ?access_token=, pages by the
// total_page header and lists e-mails as {email, state, scope}. With 50
// repositories, twice the kit's page of 25, only total_page tells the
// plugin that the second page is the last (a full page would say more).
func TestConformance(t *testing.T) {
	spec, err := plugintest.LoadFakeSpec(filepath.Join("..", "fakes", "gitee.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	full := *spec
	full.Users = slices.Clone(spec.Users)
	full.Users[0].Repos = 50
	p := plugintest.Build(t, ".")
	for name, s := range map[string]*fakeprovider.Spec{"described": spec, "full_last_page": &full} {
		t.Run(name, func(t *testing.T) {
			plugintest.Run(t, plugintest.Suite{Plugin: p, FakeSpec: s, ExpectClientAuth: fakeprovider.ClientAuthBody})
		})
	}
}
