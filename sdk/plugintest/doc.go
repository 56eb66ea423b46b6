// Package plugintest is the conformance kit for Arbor provider plugins. It
// runs a plugin — the compiled wasip1 module, through the real host of
// package plugins, sandbox and all — against a fake provider from package
// sdk/fakeprovider, through a table of cases: the authorization URL
// (state, PKCE, scopes, redirect URI), code exchange, refresh, refresh
// token rotation, invalid_grant, transient provider failures, invalid
// client credentials, the client authentication style, revocation, the
// user and their verified e-mail address, repositories paged to the end
// and expired access tokens.
//
// A plugin author tests a new provider in a few lines:
//
//	func TestConformance(t *testing.T) {
//		plugintest.Run(t, plugintest.Suite{
//			Plugin:           plugintest.Build(t, "."),
//			Fake:             fakeprovider.GitHub(),
//			ExpectClientAuth: fakeprovider.ClientAuthBody,
//		})
//	}
//
// Build compiles the plugin in a directory (Go's build cache keeps that
// cheap); Run starts the fake, loads the plugin with the fake's client and
// its endpoints on the fake (each manifest endpoint's path on the fake's
// loopback host, which the kit allows explicitly, as an operator allows an
// internal provider) and runs each case as a subtest on a freshly reset
// fake. Cases that do not apply — refresh for a plugin without it, repos
// for a login-only plugin — are logged and left out.
//
// A provider that no fakeprovider preset fits is described as data:
// Suite.FakeSpec takes a fakeprovider.Spec, LoadFakeSpec reads one from a
// JSON or YAML file (what `arbor plugin test --fake-config FILE` does).
//
// RunReport runs the same table without a *testing.T and returns a
// CaseResult per case, for `arbor plugin test`. Env (from Start or
// StartForTest) gives a plugin's own tests the loaded plugin, the running
// fake and a Login helper for provider-specific checks beyond the table.
//
// What the cases expect of the fake's users follows the fake's documented
// generator (repositories repo-001 … repo-N, every third private, every
// seventh on "master"); configure the fake's users, not the cases.
//
// docs/provider-plugins.md explains how to add a provider.
package plugintest
