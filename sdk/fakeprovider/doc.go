// Package fakeprovider runs fake OAuth 2.0 providers — GitHub, GitLab,
// Bitbucket and Google — that reproduce each provider's documented
// endpoints, token formats and quirks on one loopback host.
//
// # Why
//
// Arbor keeps every provider's quirks in a plugin, and those quirks are
// exactly what breaks in production: GitHub answers token requests
// form-encoded unless asked for JSON and reports errors with HTTP 200,
// Bitbucket insists on HTTP Basic client authentication, GitLab and
// Bitbucket rotate refresh tokens so a refresh that loses its answer loses
// the connection. The real providers cannot be reached from CI or from a
// newcomer's laptop, and a hand-written httptest handler per test drifts
// from the real thing. This package is the one place where the quirks are
// written down as code, each behind a switch in Config, so that
//
//   - Arbor's own tests and sdk/plugintest drive plugins against them and
//     assert, through Calls, what the plugin actually sent (for example that
//     Bitbucket's refresh used Basic auth and GitHub's did not);
//   - `arbor dev` lets a newcomer click "Sign in with GitHub" and approve on
//     a consent page that works without JavaScript;
//   - plugin authors configure a fake for a provider that is not built in,
//     in Go or as data: a Spec (paths, each grant's parameter placement and
//     client authentication, the API token's placement, paging style and
//     header names, field names, the e-mails' shape) from a JSON or YAML
//     file, which the fake enforces like a preset's quirks.
//
// docs/fake-providers.md lists every quirk with the provider documentation
// it follows and what is deliberately not reproduced.
//
// # Use
//
//	p := fakeprovider.New(fakeprovider.GitHub())   // the GitHub App; GitHubOAuthApp() for an OAuth app
//	if err := p.Start(); err != nil { … }   // http://127.0.0.1:<port>
//	defer p.Close()
//	e := p.Endpoints()                       // AuthURL, TokenURL, UserURL, …
//
// or mount p.Handler() on a server of your own (set Config.BaseURL when it
// is mounted under a path prefix). In tests, StartForTest starts the fake
// and closes it in t.Cleanup.
//
// The consent page is interactive by default. For automated flows either
// set Config.AutoApprove, add fake_auto=approve&fake_user=<login> (or
// fake_auto=deny) to the authorization URL, or call Provider.Approve.
//
// # Test hooks
//
// Calls records every request without secrets (client credentials, codes
// and tokens appear only as flags or as Fingerprint hashes); DeadTokenCalls
// lists the requests that presented an expired, revoked or replaced token,
// which a correct client never makes.
// ExpireAccessTokens, RevokeAll, SetAccessTokenLifetime, FailNext, HangNext,
// RateLimitNext, SetDelay, IssuedTokens, ValidAccessToken, SetMemberships
// and Reset let a test put the fake in the state it needs; POST
// /__fake/memberships (ControlMembershipsPath) changes a user's groups over
// HTTP, for tests in another process and a person trying `arbor dev`. Every method is safe for concurrent use. Time comes
// from Config.Now, so expiry can be tested without sleeping.
//
// # Notes
//
// The package imports only the standard library (it must not drag test
// dependencies into the arbor binary) and never contacts a real provider.
// Its tokens are random strings shaped like the provider's (gho_, ghu_,
// ghr_, ya29., …) and mean nothing anywhere else.
package fakeprovider
