package bitbucket

import (
	"context"
	"strconv"

	"github.com/vintner/arbor/sdk/plugin"
)

// groups are the slugs of the workspaces the user belongs to, the
// personal one included, from GET /2.0/user/workspaces, paged by the
// body's next link. It is the current endpoint: GET /2.0/workspaces and
// GET /2.0/user/permissions/workspaces were removed (410 Gone since 27
// February 2026, CHANGE-2770,
// https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-2770)
// in favour of it (CHANGE-3022,
// https://developer.atlassian.com/cloud/bitbucket/changelog/#CHANGE-3022;
// https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/).
// It needs the account scope, which sign-in already has: the manifest's
// scopes.groups is empty.
func groups(ctx context.Context, r *plugin.GroupsRequest) (*plugin.Groups, error) {
	c, err := api.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	var all []string
	u := c.Base() + "/user/workspaces?pagelen=" + strconv.Itoa(maxPageLen)
	for range maxGroupPages {
		slugs, next, err := workspaces(ctx, c, u)
		if err != nil {
			return nil, err
		}
		all = append(all, slugs...)
		if u = next; u == "" {
			return plugin.NewGroups(all, nil), nil
		}
	}
	return nil, plugin.ErrProvider(0, "/2.0/user/workspaces has more than "+strconv.Itoa(maxGroupPages)+" pages; it was not read to the end")
}

// maxGroupPages bounds the pages of /2.0/user/workspaces read.
const maxGroupPages = 10
