package github

import (
	"context"
	"errors"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/sdk/plugin"
)

// groups are the user's organisations ("vintner") and teams
// ("vintner/platform", the organisation's login and the team's slug), in
// lower case: GitHub treats both case-insensitively ("The organization
// name is not case sensitive").
//
//   - GET /user/orgs lists the organisations, GET /user/teams the teams
//     with their organisation, both paged by the Link header. An OAuth
//     app's token needs read:org (or user) for /user/orgs, which answers
//     403 without it, and read:org, repo or user for /user/teams
//     (https://docs.github.com/en/rest/orgs/orgs#list-organizations-for-the-authenticated-user,
//     https://docs.github.com/en/rest/teams/teams#list-teams-for-the-authenticated-user):
//     the manifest's scopes.groups is read:org.
//   - An organisation with OAuth app access restrictions that has not
//     approved this app drops out of those lists without a word
//     (https://docs.github.com/en/organizations/managing-oauth-access-to-your-organizations-data/about-oauth-app-access-restrictions).
//     So each wanted organisation the lists leave out is asked about:
//     GET /user/memberships/orgs/{org} answers the membership, 404 when
//     the user is not affiliated, and 403 when the organisation blocks
//     the app
//     (https://docs.github.com/en/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user),
//     with the message "… organization has enabled OAuth App access
//     restrictions …". Such an organisation, and the wanted teams in it,
//     are Restricted: the organisation must approve the app.
//
// A GitHub App's user token sees what the app's installation and
// permissions allow; the same calls apply (not confirmed from
// documentation how /user/orgs filters for such tokens).
func groups(ctx context.Context, r *plugin.GroupsRequest) (*plugin.Groups, error) {
	c, err := api.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	var orgs []string
	err = c.EachPage(ctx, plugin.PagingLink, "/user/orgs?per_page=100", maxGroupPages, func(resp *plugin.Response) (err error) {
		orgs, err = plugin.AppendNames(orgs, resp.Body, "login")
		return err
	})
	if err != nil {
		return nil, scopeHint(err, "/user/orgs")
	}
	var teams []string
	err = c.EachPage(ctx, plugin.PagingLink, "/user/teams?per_page=100", maxGroupPages, func(resp *plugin.Response) error {
		var err error
		teams, err = appendTeams(teams, resp.Body)
		return err
	})
	if err != nil {
		return nil, scopeHint(err, "/user/teams")
	}
	for i := range orgs {
		orgs[i] = strings.ToLower(orgs[i])
	}

	wanted := make([]string, 0, len(r.Wanted))
	var wantedOrgs []string
	for _, w := range r.Wanted {
		w = strings.ToLower(w)
		wanted = append(wanted, w)
		org, _, _ := strings.Cut(w, "/")
		wantedOrgs = append(wantedOrgs, org)
	}
	var restricted []string
	unlisted := plugin.NotListed(wantedOrgs, orgs)
	if len(unlisted) > maxMembershipChecks {
		plugin.Log(plugin.LevelWarn, "the policy names more organisations the user is not listed in than one check asks about; the rest count as not joined")
		unlisted = unlisted[:maxMembershipChecks]
	}
	for _, org := range unlisted {
		member, blocked, err := orgMembership(ctx, c, org)
		switch {
		case err != nil:
			return nil, err
		case member:
			orgs = append(orgs, org)
		case blocked:
			restricted = append(restricted, org)
			for _, w := range wanted {
				if strings.HasPrefix(w, org+"/") {
					restricted = append(restricted, w)
				}
			}
		}
	}
	return plugin.NewGroups(append(orgs, teams...), restricted), nil
}

// maxGroupPages bounds the pages of /user/orgs and /user/teams read (100
// entries each); maxMembershipChecks the organisations asked about one by
// one.
const (
	maxGroupPages       = 10
	maxMembershipChecks = 20
)

// appendTeams reads a page of /user/teams: team objects whose slug and
// organization.login make "org/slug", lower case.
func appendTeams(dst []string, body []byte) ([]string, error) {
	j := plugin.NewJSON(body)
	j.Array(func() {
		var slug, org string
		j.Object(func(key []byte) {
			switch string(key) {
			case "slug":
				slug = j.String()
			case "organization":
				j.Object(func(key []byte) {
					if string(key) == "login" {
						org = j.String()
					}
				})
			}
		})
		if slug != "" && org != "" {
			dst = append(dst, strings.ToLower(org+"/"+slug))
		}
	})
	return dst, j.Err()
}

// orgMembership asks GET /user/memberships/orgs/{org}: member for an
// active membership, blocked when the organisation refuses this app (403
// that is not a rate limit).
func orgMembership(ctx context.Context, c *plugin.Caller, org string) (member, blocked bool, err error) {
	path := "/user/memberships/orgs/" + plugin.PathEscape(org)
	resp, err := c.Do(ctx, plugin.NewRequest("GET", path, nil))
	if err != nil {
		return false, false, err
	}
	switch resp.StatusCode {
	case 200:
		state := ""
		j := plugin.NewJSON(resp.Body)
		j.Object(func(key []byte) {
			if string(key) == "state" {
				state = j.String()
			}
		})
		if err := j.Err(); err != nil {
			return false, false, err
		}
		// "pending": invited, not yet a member.
		return state == "active", false, nil
	case 404:
		return false, false, nil
	case 403:
		err := plugin.CheckResponse("GET", c.Base()+path, resp)
		var e *plugin.Error
		if errors.As(err, &e) && e.Code == abi.CodeRateLimited {
			return false, false, err
		}
		plugin.Log(plugin.LevelInfo, "organisation "+org+" refuses this app (OAuth app access restrictions): an owner must approve it")
		return false, true, nil
	}
	return false, false, plugin.CheckResponse("GET", c.Base()+path, resp)
}

// scopeHint explains a 403 from a listing that is not a rate limit: the
// token lacks read:org.
func scopeHint(err error, path string) error {
	var e *plugin.Error
	if !errors.As(err, &e) || e.Code != abi.CodeProviderError || e.Status != 403 {
		return err
	}
	return &plugin.Error{Code: abi.CodeProviderError, Status: 403, Message: "GET " + path +
		" was refused (403): the token lacks the read:org scope. Arbor asks for it (scopes.groups, or the provider's groups_scopes) " +
		"at sign-in only when the policy uses GitHub groups; the user must sign in again to grant it"}
}
