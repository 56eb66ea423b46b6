package plugins

import (
	"context"
	"slices"

	"github.com/vintner/arbor/sdk/abi"
)

// GroupsInput asks which groups the owner of an access token belongs to.
type GroupsInput struct {
	// AccessToken is the user's token from the login grant. It is a
	// secret: it is removed from anything the plugin logs or returns, as
	// with User and Repos.
	AccessToken string
	// Wanted are the groups, by the provider's own names ("vintner",
	// "vintner/platform"), that the policy mentions for this provider:
	// the plugin asks about them specifically (abi.GroupsRequest).
	Wanted []string
}

// Groups returns the groups the user belongs to, by the provider's own
// names ("vintner", "vintner/platform", not "github:vintner"), and those
// the provider hides from this app (Restricted). Only the client id is
// sent with it, never the secret.
//
// # Errors
//
// A plugin that does not implement groups (one built before ABI v1 had
// the operation, or a provider without groups) answers an *Error with
// code unsupported, without calling the plugin; check Implements first to
// tell that apart from a failure. invalid_token means the token expired
// or was revoked: refresh it and ask again.
func (p *Plugin) Groups(ctx context.Context, in GroupsInput) (*abi.Groups, error) {
	return call[abi.Groups](ctx, p, abi.OpGroups, func(v *version) abi.Message {
		return &abi.GroupsRequest{Client: abi.Client{ID: v.cfg.ClientID}, Endpoints: v.endpoints,
			AccessToken: in.AccessToken, Wanted: in.Wanted}
	}, in.AccessToken)
}

// Implements reports whether the current version of the plugin implements
// op (its manifest lists it, and the module's marker agreed when it
// loaded). It is false for a closed plugin.
func (p *Plugin) Implements(op abi.Op) bool {
	v := p.cur.Load()
	return v != nil && v.ops.Has(op)
}

// groupsScopes returns the scopes the groups operation needs on top of the
// login scopes: the operator's groups_scopes, else the manifest's.
func (v *version) groupsScopes() []string {
	if !v.ops.Has(abi.OpGroups) {
		return nil
	}
	if len(v.cfg.GroupsScopes) > 0 {
		return v.cfg.GroupsScopes
	}
	return v.man.Scopes.Groups
}

// withGroupsScopes returns scopes with the groups scopes it lacks appended,
// in a new slice (scopes may be the configuration's).
func (v *version) withGroupsScopes(scopes []string) []string {
	extra := v.groupsScopes()
	out := scopes
	for _, s := range extra {
		if !slices.Contains(out, s) {
			if len(out) == len(scopes) {
				out = slices.Clip(slices.Clone(scopes))
			}
			out = append(out, s)
		}
	}
	return out
}
