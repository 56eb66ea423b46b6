package main

import (
	"testing"

	"github.com/vintner/arbor/sdk/fakeprovider"
	"github.com/vintner/arbor/sdk/plugintest"
)

// The plugin passes the conformance kit against the generic fake, whose
// zero Config follows Gitea's paths and answers (docs/fake-providers.md),
// and against the same fake issuing refresh tokens as Gitea does, with
// client credentials in the form body.
func TestConformance(t *testing.T) {
	p := plugintest.Build(t, ".")
	for name, fake := range map[string]fakeprovider.Config{
		"plain":          {},
		"refresh":        {IssueRefreshTokens: true},
		"refresh_rotate": {IssueRefreshTokens: true, RotateRefreshTokens: true},
	} {
		t.Run(name, func(t *testing.T) {
			plugintest.Run(t, plugintest.Suite{Plugin: p, Fake: fake, ExpectClientAuth: fakeprovider.ClientAuthBody})
		})
	}
}
