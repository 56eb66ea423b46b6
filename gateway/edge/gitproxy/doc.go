// Package gitproxy is Arbor's Git proxy: Git's smart HTTP protocol,
// relayed to a provider's Git host with a fresh provider token of the
// credential owner's connection, so that a machine (ArgoCD, a CI worker)
// clones and fetches for months with a credential that never expires on
// its side, while the provider's tokens live hours.
//
//	https://{arbor}/git/{provider}/{owner}/{repo}.git
//	https://{arbor}/git/{provider}/{group}/{subgroup}/{repo}.git   (GitLab)
//
// # What is relayed
//
// Exactly the three requests of smart HTTP (gitprotocol-http(5)):
//
//	GET  …/info/refs?service=git-upload-pack     ref advertisement (clone, fetch, ls-remote)
//	POST …/git-upload-pack                       negotiation and packfile
//	GET  …/info/refs?service=git-receive-pack    push, only with git:write
//	POST …/git-receive-pack                      push, only with git:write
//
// Anything else under /git/ (dumb HTTP's objects/…, HEAD, other methods)
// is refused. The request to the provider is built afresh, not edited
// from the client's: it carries the Git-Protocol header (protocol v2
// passes through), Content-Type, Content-Encoding, Accept,
// Accept-Encoding and git's User-Agent, plus the provider's Basic
// credentials (the host's user name, e.g. x-access-token, and the token).
// Cookies, the client's Authorization, forwarding headers and anything
// else the client sent never reach the provider. Only Content-Type,
// Content-Encoding and Cache-Control come back.
//
// # Streaming
//
// Bodies are streamed both ways with constant memory: git's request body
// (a negotiation, or a pushed packfile) is read from the client as the
// provider reads it, and the provider's packfile is written to the client
// as it arrives. A request body is capped (Config.FetchBodyLimit,
// Config.PushBodyLimit: 413 body_too_large), and a response body that
// stalls for Config.BodyStallTimeout is cut, so a dead provider never
// holds a clone forever; the client's side is held to the gateway's read
// timeout and minimum transfer rates.
//
// A clone holds its request for as long as the pack takes, with a
// connection to the Git host and the relay's buffers: Config.MaxPerClient
// caps how many one client address may hold at once (429
// too_many_concurrent_requests), from before the credential is checked
// until the body's last byte is written. Failed credentials are limited
// per address at the edge (gateway/edge/ratelimit, GitFailedAuth), in
// front of this package.
//
// # Who may do what
//
// The caller is a repository credential (gateway/authn, Chain.Repo: HTTP
// Basic, user name = credential id, password = token); without one the
// answer is 401 with WWW-Authenticate: Basic, which makes git ask its
// credential helper. The credential's scopes decide between fetch
// (git:read) and push (git:write); its repository patterns decide which
// repositories (service/workers.MatchRepo). The provider then checks
// what the owner's own account may read: Arbor never widens it.
//
// # Errors git shows
//
// git prints the body of a failed smart-HTTP request when it is
// text/plain, one "remote: " line per line, before its own "fatal:" line
// (remote-curl.c, show_http_message; checked with git 2.39 in this
// package's tests). So errors for a git client (User-Agent git/…, JGit,
// go-git, or a Git-Protocol header) keep their HTTP status (401, 403,
// 404, 429, 502, 503, 504: gitprotocol-http(5) says a server MUST NOT
// answer 200 for a repository that does not exist) and carry a
// text/plain message that says what to do (httperr.Error.Plain); other
// clients get Arbor's JSON error. A disconnected or "needs reconnect"
// connection is 403 with the Integrations page's address; after the user
// reconnects, the same credential works again.
//
// # Why not the reverse proxy
//
// gateway/edge/proxy relays to one upstream app, keeps the client's
// headers (minus identity and hop-by-hop ones) and adds forwarding
// headers: right for an app behind Arbor, wrong for a third-party Git
// host that must see nothing of the client but what git needs, on a host
// chosen per request. What this package shares with it is the shape:
// a fresh request per call, bodies streamed with limits and stall
// timeouts, a streamed answer accounted for when its last byte is written
// (gateway.ObserveStream).
//
// # Provider knowledge
//
// The package knows no provider: Hosts answers each provider's Git host
// and Basic user name (app wiring: built-in defaults and
// providers.<name>.git_url / git_user; later the provider plugins).
package gitproxy
