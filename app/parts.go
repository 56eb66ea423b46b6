package app

import (
	"github.com/vintner/arbor/gateway/assertion"
	"github.com/vintner/arbor/gateway/clitoken"
	"github.com/vintner/arbor/gateway/session"
	"github.com/vintner/arbor/gateway/sessiontoken"
	"github.com/vintner/arbor/gateway/workers"
)

// The parts below are exposed for full-stack tests (app/apptest), which
// check what a request did to them or use them as a client would not be
// able to (minting a token for a session that does not exist, flushing the
// workers' last-used times). `arbor serve` does not use them.

// Sessions is the browser session manager.
func (a *App) Sessions() *session.Manager { return a.web.sessions }

// SessionTokens signs and verifies the session cookie's token.
func (a *App) SessionTokens() *sessiontoken.Signer { return a.web.sessionToks }

// CLITokens signs and verifies the CLI's access and refresh tokens.
func (a *App) CLITokens() *clitoken.Signer { return a.web.cliTokens }

// Assertions signs the identity assertions sent to the upstream.
func (a *App) Assertions() *assertion.Signer { return a.web.asserter }

// Workers is the worker service.
func (a *App) Workers() *workers.Service { return a.web.workers }
