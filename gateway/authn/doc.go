// Package authn decides who is calling: one chain of authenticators, one
// per kind of credential, configured once at start-up and asked by every
// route that needs a caller (the proxy's guard, Arbor's JSON APIs and
// pages, the CLI login pages, the worker routes and the service route).
//
// # Why one chain
//
// The answer used to be worked out in three places, in three orders, and
// the kind of caller was guessed from which fields of the identity were
// empty. Kept in one place, the routes cannot drift apart in which
// credentials they accept, in which order, or in the answer they give when
// there is none; and every Identity says what it is (its Kind).
//
// # Outcomes
//
// An Authenticator checks one kind of credential and answers one of four
// outcomes, kept apart as Caddy's caddyauth keeps "no credentials" apart
// from "authenticated" and from an error:
//
//   - None: the request carries no credential of this kind; the next
//     authenticator may answer.
//   - Authenticated: the Identity is the caller.
//   - Refused: a credential of this kind is present but not valid (forged,
//     expired, revoked). Its error says why, for the log only.
//   - Failed: the credential could not be checked (the store is
//     unavailable). Not the caller's fault: 503 store_unavailable, retry.
//
// # Order
//
// Each class of route (Route) names the kinds it accepts, in order; the
// first kind whose credential is present decides, so a refused credential
// is never rescued by a later one. The rules are in rules.go:
//
//   - Upstream (every request relayed to the app): the session cookie, then
//     a CLI access token. A bearer is looked at only without a session
//     cookie, and one Arbor cannot use (another scheme, someone else's
//     token) counts as none: the upstream may use Authorization for its own
//     purposes, and it is passed on untouched. A live CLI token must carry
//     the proxy scope.
//   - Worker routes: worker credentials only, and every failure gets the one
//     answer worker_unauthorized.
//   - API (Arbor's JSON APIs) and Who (/api/auth/me): a CLI access token
//     when one is sent, else the session cookie.
//   - Page and Form (Arbor's pages): the session cookie only.
//   - Service (the service token route): a configured service token only.
//   - Repo (the Git proxy, /git/…): a repository credential as HTTP Basic
//     only, and every failure gets 401 repo_unauthorized with
//     WWW-Authenticate: Basic, so that git asks for credentials.
//
// Without a credential a route accepts, it answers 401 with the one code
// httperr.CodeUnauthenticated (worker and service routes keep their own
// codes, worker_unauthorized and invalid_service_token).
//
// # Cost
//
// The guard asks the chain on every proxied request. The chain adds no
// allocation: authenticators are interfaces set once, the Identity is
// returned by value, and the order of each route is a fixed array.
package authn
