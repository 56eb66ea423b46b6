package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ServiceToken is a backend's credential for the service route.
type ServiceToken struct {
	// Name identifies the backend in the audit trail ("argocd-sync").
	Name string
	// Token is the secret it presents as "Authorization: Bearer …".
	Token string
}

// serviceTokens authenticates configured backends by their service token
// (KindService).
type serviceTokens struct {
	services []service
}

type service struct {
	name string
	hash [sha256.Size]byte
}

// newServiceTokens checks the tokens: each needs a name and at least 32
// characters.
func newServiceTokens(tokens []ServiceToken) (*serviceTokens, error) {
	s := &serviceTokens{}
	for _, t := range tokens {
		if t.Name == "" || len(t.Token) < 32 {
			return nil, fmt.Errorf("authn: service token %q: need a name and a token of at least 32 characters (arbor keys generate makes one)", t.Name)
		}
		s.services = append(s.services, service{name: t.Name, hash: sha256.Sum256([]byte(t.Token))})
	}
	return s, nil
}

var errNotService = fmt.Errorf("authn: not a configured service token")

// Authenticate finds the service whose token the request presents; every
// configured token is compared, in constant time.
func (s *serviceTokens) Authenticate(c *fiber.Ctx) (Identity, Outcome, error) {
	tok, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok || tok == "" {
		return Identity{}, None, nil
	}
	h := sha256.Sum256([]byte(tok))
	name, found := "", 0
	for _, sv := range s.services {
		if subtle.ConstantTimeCompare(h[:], sv.hash[:]) == 1 {
			name, found = sv.name, 1
		}
	}
	if found != 1 {
		return Identity{}, Refused, errNotService
	}
	return Identity{Kind: KindService, Service: name}, Authenticated, nil
}
