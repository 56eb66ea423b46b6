package google

import (
	"context"
	"strings"

	"github.com/vintner/arbor/sdk/plugin"
)

// groups is the user's hosted domain ("example.com", lower case): the hd
// claim, "the domain associated with the Google Workspace or Cloud
// organization of the user", present only for such accounts
// (https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload).
// It is read from the userinfo endpoint, which the login scopes already
// reach: no extra scope. A consumer account (gmail.com, or any address
// registered as a Google account) has none, so no group: the address's
// domain alone proves nothing.
func groups(ctx context.Context, r *plugin.GroupsRequest) (*plugin.Groups, error) {
	c, err := plugin.API{}.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	resp, err := c.Get(ctx, userinfo)
	if err != nil {
		return nil, err
	}
	var hd string
	j := plugin.NewJSON(resp.Body)
	j.Object(func(key []byte) {
		if string(key) == "hd" {
			hd = strings.ToLower(j.String())
		}
	})
	if err := j.Err(); err != nil {
		return nil, err
	}
	if hd == "" {
		return plugin.NewGroups(nil, nil), nil
	}
	return plugin.NewGroups([]string{hd}, nil), nil
}
