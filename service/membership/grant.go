package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/sealedgrant"
	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
)

// refreshMargin: a grant whose access token expires within it is refreshed
// before its groups are read (as connections.DefaultRefreshMargin).
const refreshMargin = time.Minute

// grant is the sealed part of an identity's login grant: the same as a
// Git connection's sealed tokens (package internal/sealedgrant).
type grant = sealedgrant.Grant

func (s *Service) sealGrant(provider, subject string, g grant) ([]byte, error) {
	sealed, err := sealedgrant.Seal(s.opts.Keys, g, data.IdentityAAD(provider, subject))
	if err != nil {
		return nil, fmt.Errorf("membership: sealing the grant of %s/%s: %w", provider, subject, err)
	}
	return sealed, nil
}

func (s *Service) openGrant(id data.Identity) (grant, error) {
	g, err := sealedgrant.Open(s.opts.Keys, id.Grant, data.IdentityAAD(id.Provider, id.Subject))
	if err != nil {
		return grant{}, fmt.Errorf("membership: the grant of %s/%s: %w", id.Provider, id.Subject, err)
	}
	return g, nil
}

// errGrantChanged: the stored grant is no longer the one refreshed (a
// sign-in stored a newer one meanwhile).
var errGrantChanged = errors.New("membership: the identity's grant changed during the refresh")

// accessToken returns a usable access token of id's grant, refreshing the
// grant first when its access token has expired or is about to. The caller
// holds the user's lock. The refreshed grant is sealed and written before
// its access token is used, and only over the grant it replaces: if a
// sign-in stored a newer grant meanwhile, that one is used instead.
//
// Write before use because a refresh spends the old pair: GitHub ("that
// refresh token and the old user access token will no longer work",
// https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens)
// and GitLab (a refresh "invalidates the existing access_token and
// refresh_token", https://docs.gitlab.com/api/oauth2/) both rotate, so a
// pair not stored is a grant lost. A token that never expires (a classic
// GitHub OAuth app) is used as it is.
func (s *Service) accessToken(ctx context.Context, id data.Identity) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		g, err := s.openGrant(id)
		if err != nil {
			return "", err
		}
		now := s.opts.Now()
		exp := g.Expiry()
		if exp.IsZero() || now.Add(refreshMargin).Before(exp) {
			return g.AccessToken, nil
		}
		if g.RefreshToken == "" {
			if now.Before(exp) {
				return g.AccessToken, nil
			}
			return "", errors.New("the sign-in's access token expired and the provider issued no refresh token; sign in again")
		}
		p, _, ok := s.opts.Providers.Get(id.Provider)
		if !ok {
			return "", fmt.Errorf("no plugin serves %s", id.Provider)
		}
		tok, err := p.Refresh(ctx, plugins.RefreshInput{RefreshToken: g.RefreshToken})
		if err != nil {
			if plugins.CodeOf(err) == abi.CodeInvalidGrant {
				return "", fmt.Errorf("the provider refused to renew the sign-in's grant (sign in again): %w", err)
			}
			return "", fmt.Errorf("renewing the sign-in's grant: %w", err)
		}
		next := sealedgrant.From(tok, s.opts.Now().UTC(), g)
		sealed, err := s.sealGrant(id.Provider, id.Subject, next)
		if err != nil {
			return "", err
		}
		old, provider, subject := id.Grant, id.Provider, id.Subject
		_, err = s.store.UpdateIdentity(ctx, provider, subject, func(cur data.Identity) (data.Identity, error) {
			if !bytes.Equal(cur.Grant, old) {
				return cur, errGrantChanged
			}
			cur.Grant, cur.GrantExpiresAt = sealed, next.Expiry()
			return cur, nil
		})
		if errors.Is(err, errGrantChanged) {
			if id, err = s.store.GetIdentity(ctx, provider, subject); err != nil {
				return "", err
			}
			continue // a sign-in's newer grant: use it
		}
		if err != nil {
			// The provider may have rotated the refresh token already; the
			// pair is lost and the next check fails until a sign-in.
			return "", fmt.Errorf("storing the renewed grant: %w", err)
		}
		s.audit(ctx, data.AuditEvent{Action: "identity.grant_refresh", Actor: "system", UserID: id.UserID, Target: id.Provider, Outcome: "ok"})
		return next.AccessToken, nil
	}
	return "", errGrantChanged
}

// groupsReader is a provider that can read groups (*plugins.Plugin).
type groupsReader interface {
	Groups(ctx context.Context, in plugins.GroupsInput) (*abi.Groups, error)
}

// fetchGroups reads provider's groups with accessToken, prefixed
// "<provider>:" and sorted.
func (s *Service) fetchGroups(ctx context.Context, provider, accessToken string) (groups, restricted []string, err error) {
	p, _, ok := s.opts.Providers.Get(provider)
	if !ok {
		return nil, nil, fmt.Errorf("no plugin serves %s", provider)
	}
	gr, ok := p.(groupsReader)
	if !ok {
		return nil, nil, fmt.Errorf("the %s plugin cannot read groups", provider)
	}
	res, err := gr.Groups(ctx, plugins.GroupsInput{AccessToken: accessToken, Wanted: s.opts.Wanted[provider]})
	if err != nil {
		return nil, nil, err
	}
	return prefixed(provider, res.Groups), prefixed(provider, res.Restricted), nil
}

// prefixed returns "<provider>:<name>" for each usable name, sorted.
func prefixed(provider string, names []string) []string {
	var out []string
	for _, n := range names {
		if n == "" || len(n) > maxGroupName || strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			continue
		}
		out = append(out, provider+":"+n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// replaceProvider returns groups with provider's replaced by fresh (both
// sorted "<provider>:" names).
func replaceProvider(groups []string, provider string, fresh []string) []string {
	out := make([]string, 0, len(groups)+len(fresh))
	for _, g := range groups {
		if !strings.HasPrefix(g, provider+":") {
			out = append(out, g)
		}
	}
	out = append(out, fresh...)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// diff returns what is in b and not in a (added) and the reverse
// (removed); both sorted.
func diff(a, b []string) (added, removed []string) {
	for _, g := range b {
		if !slices.Contains(a, g) {
			added = append(added, g)
		}
	}
	for _, g := range a {
		if !slices.Contains(b, g) {
			removed = append(removed, g)
		}
	}
	return added, removed
}
