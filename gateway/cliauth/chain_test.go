package cliauth

import (
	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/gateway/authn"
	"github.com/vintner/arbor/gateway/authn/session"
)

// newCLI is New with the chain Arbor builds (cmd/arbor): the session
// manager's cookie and the CLIAuth itself as the CLI authenticator.
func newCLI(opts Options) (*CLIAuth, error) {
	var a *CLIAuth
	ch, err := authn.New(authn.Config{
		Session: opts.Sessions.(*session.Manager).Cookies(),
		CLI: authn.AuthenticatorFunc(func(c *fiber.Ctx) (authn.Identity, authn.Outcome, error) {
			return a.Authenticate(c)
		}),
	})
	if err != nil {
		return nil, err
	}
	opts.Chain = ch
	a, err = New(opts)
	return a, err
}
