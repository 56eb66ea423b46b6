package plugin

import (
	"context"
	"slices"
	"strconv"
)

// Helpers for the groups operation (GroupLister). A provider's groups come
// from one or more paged lists of objects, each naming a group by one
// member (GitLab's full_path, Bitbucket's slug); Wanted groups the lists
// leave out may be asked about one by one (GitHub's organisations that
// restrict OAuth apps).
//
//	func (*gitlab) Groups(ctx context.Context, r *plugin.GroupsRequest) (*plugin.Groups, error) {
//		c, err := api.For(r.Endpoints, r.AccessToken)
//		if err != nil {
//			return nil, err
//		}
//		var names []string
//		err = c.EachPage(ctx, plugin.PagingNextPage, "/groups?min_access_level=10&per_page=100", 10,
//			func(resp *plugin.Response) (err error) {
//				names, err = plugin.AppendNames(names, resp.Body, "full_path")
//				return err
//			})
//		if err != nil {
//			return nil, err
//		}
//		return plugin.NewGroups(names, nil), nil
//	}

// EachPage reads a paged list from its first page (a path under the API
// base) to its last, calling fn with each answer, at most maxPages pages.
// A list longer than that is an error (provider_error), not a short
// answer: a group left out would read as a group the user left.
func (c *Caller) EachPage(ctx context.Context, p Paging, first string, maxPages int, fn func(*Response) error) error {
	cursor := ""
	for range maxPages {
		resp, next, err := c.Page(ctx, p, first, cursor)
		if err != nil {
			return err
		}
		if err := fn(resp); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
	return ErrProvider(0, "the list at "+first+" has more than "+strconv.Itoa(maxPages)+" pages; it was not read to the end")
}

// AppendNames reads body, a JSON array of objects, and appends the string
// member named member of each object to dst (objects without it, or with
// an empty one, are skipped).
func AppendNames(dst []string, body []byte, member string) ([]string, error) {
	j := NewJSON(body)
	j.Array(func() {
		j.Object(func(key []byte) {
			if string(key) != member {
				j.Skip()
				return
			}
			if s := j.String(); s != "" {
				dst = append(dst, s)
			}
		})
	})
	return dst, j.Err()
}

// NotListed returns the names in wanted that are not in listed, in
// wanted's order, without repeats: the groups a plugin may ask about one
// by one.
func NotListed(wanted, listed []string) []string {
	var out []string
	for _, w := range wanted {
		if w != "" && !slices.Contains(listed, w) && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// NewGroups returns the groups operation's answer with both lists sorted,
// without repeats or empty names, and with no group in both (a group the
// user is listed in is not restricted).
func NewGroups(groups, restricted []string) *Groups {
	clean := func(s []string) []string {
		s = slices.DeleteFunc(slices.Clone(s), func(n string) bool { return n == "" })
		slices.Sort(s)
		return slices.Compact(s)
	}
	g := &Groups{Groups: clean(groups), Restricted: clean(restricted)}
	g.Restricted = slices.DeleteFunc(g.Restricted, func(n string) bool {
		_, found := slices.BinarySearch(g.Groups, n)
		return found
	})
	return g
}
