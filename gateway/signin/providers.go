package signin

import (
	"github.com/vintner/arbor/service/providers"
)

// Providers is what the flow needs to know about providers;
// *providers.Set is one.
type Providers interface {
	// Ready reports whether the provider list is known: false while the
	// plugins are still loading at start-up.
	Ready() bool
	// Login lists the providers users can sign in with, ordered for display.
	Login() []providers.Info
	// Get returns a configured provider by name.
	Get(name string) (providers.Provider, providers.Info, bool)
}

// provider returns the named provider if it can serve purpose.
func (w *SignIn) provider(name, purpose string) (providers.Provider, providers.Info, bool) {
	p, in, ok := w.opts.Providers.Get(name)
	if !ok {
		return nil, providers.Info{}, false
	}
	switch purpose {
	case purposeConnect:
		ok = in.Git
	default:
		ok = in.Login
	}
	return p, in, ok
}
