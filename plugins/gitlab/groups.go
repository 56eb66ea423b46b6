package gitlab

import (
	"context"
	"errors"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

// groups are the full paths of the groups the user is a member of
// ("vintner", "vintner/platform"), as GitLab spells them: GET
// /groups?min_access_level=10 ("Limit to groups where current user has
// at least this role", 10 being Guest, so that an administrator's token
// does not list every group of the instance), paged by X-Next-Page
// (https://docs.gitlab.com/api/groups/#list-groups). The endpoint needs
// the read_api (or api) scope: read_user, the login scope, grants only
// /user (the scopes table of
// https://docs.gitlab.com/integration/oauth_provider/), so the manifest's
// scopes.groups is read_api.
//
// Whether GitLab lists a subgroup the user reaches only through a parent
// group's membership is not confirmed from documentation: Arbor matches
// what GitLab lists.
func groups(ctx context.Context, r *plugin.GroupsRequest) (*plugin.Groups, error) {
	c, err := plugin.API{}.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	var names []string
	err = c.EachPage(ctx, plugin.PagingNextPage, "/groups?min_access_level=10&per_page=100", maxGroupPages,
		func(resp *plugin.Response) (err error) {
			names, err = plugin.AppendNames(names, resp.Body, "full_path")
			return err
		})
	var e *plugin.Error
	if errors.As(err, &e) && e.Code == abi.CodeProviderError && e.Status == 403 {
		return nil, &plugin.Error{Code: abi.CodeProviderError, Status: 403, Message: "GET /groups was refused (403): " +
			"the token lacks the read_api scope. Arbor asks for it (scopes.groups, or the provider's groups_scopes) at sign-in " +
			"only when the policy uses GitLab groups; the user must sign in again to grant it"}
	}
	if err != nil {
		return nil, err
	}
	return plugin.NewGroups(names, nil), nil
}

// maxGroupPages bounds the pages of /groups read (100 groups each).
const maxGroupPages = 10
