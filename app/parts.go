package app

import (
	"github.com/vintner/arbor/gateway/authn/session"
	"github.com/vintner/arbor/gateway/authn/sessiontoken"
	"github.com/vintner/arbor/service/membership"
	"github.com/vintner/arbor/service/workers"
)

// The parts below are exposed for full-stack tests (app/apptest), which
// check what a request did to them or do what no client can (read the
// user behind a session cookie, register a worker directly, flush the
// workers' last-used times). `arbor serve` does not use them.

// Sessions is the browser session manager.
func (a *App) Sessions() *session.Manager { return a.web.sessions }

// SessionTokens signs and verifies the session cookie's token.
func (a *App) SessionTokens() *sessiontoken.Signer { return a.web.sessionToks }

// Workers is the worker service.
func (a *App) Workers() *workers.Service { return a.web.workers }

// Members is the membership service: each user's standing (Member) for
// the authentication chain, the background re-check, and EndAccess.
func (a *App) Members() *membership.Service { return a.web.members }

// FlushLogs writes out the access log lines still buffered; they reach
// Options.Stderr within 200 ms anyway, and at Close. A test that searches
// the log calls it first.
func (a *App) FlushLogs() { _ = a.accessOut.Flush() }
