package plugin

import (
	"context"
	"strconv"
	"strings"
)

// More paging styles, for List (Caller.Page knows PagingLink and
// PagingNextPage only).
const (
	// PagingTotalPages reads the number of pages from a response header
	// (List.TotalPagesHeaders: X-Total-Pages when empty, as GitLab sends
	// it; Gitee's total_page, https://gitee.com/api/v5/swagger): the
	// cursor is the next page's number while there is one.
	PagingTotalPages Paging = PagingNextPage + 1 + iota
	// PagingBodyNext follows a URL member of the answer's body
	// (List.NextMember, "next" when empty), beside the items in
	// List.ItemsMember (Bitbucket: {"values": […], "next": "https://…"},
	// https://developer.atlassian.com/cloud/bitbucket/rest/intro/#pagination):
	// the cursor is that URL.
	PagingBodyNext
	// PagingPages asks page after page (List.PageParam) until one is
	// shorter than the page size asked for, for an API that says
	// nothing about what follows: the cursor is the next page's number.
	// A list whose length is a multiple of the page size ends with an
	// empty page.
	PagingPages
	// PagingNone reads a list that is not paged (Gitea's /user/emails):
	// one request, without page size parameters, and no cursor.
	PagingNone
)

// List declares one of a provider's paged lists: where its first page is,
// how a page says where the list goes on (Paging), and the names of its
// parameters, headers and members. Caller.List reads a page of it;
// Provider declares its repositories and e-mail addresses with it.
//
//	var repos = plugin.List{Path: "/user/repos", Paging: plugin.PagingTotalPages,
//		TotalPagesHeaders: []string{"total_page"}, MaxPerPage: 100}
type List struct {
	// Path is the first page, a path under the API base with the list's
	// fixed parameters ("/user/repos?sort=created").
	Path string
	// Paging is how a page names the next one: PagingLink (the zero
	// value), PagingNextPage, PagingTotalPages, PagingBodyNext,
	// PagingPages, or PagingNone for a list that is not paged.
	Paging Paging
	// PerPageParams name the page size parameter, sent on the first page
	// and on pages the cursor numbers: "per_page" when empty. Gitea reads
	// "limit" and Forgejo "per_page": {"limit", "per_page"} sends both.
	PerPageParams []string
	// MaxPerPage is the largest page the provider serves; a request's
	// PerPage is clamped to it (PerPage). 100 when 0.
	MaxPerPage int
	// PageParam names the page number parameter of the numbered styles
	// (PagingNextPage, PagingTotalPages, PagingPages): "page" when empty.
	// The first page is asked without it.
	PageParam string
	// TotalPagesHeaders name the response header that holds the number of
	// pages (PagingTotalPages), the first one present counting:
	// {"X-Total-Pages"} when empty. Names are matched case-insensitively
	// (Header.Get).
	TotalPagesHeaders []string
	// NextMember names the body member holding the next page's URL
	// (PagingBodyNext): "next" when empty. A null, empty or missing
	// member ends the list.
	NextMember string
	// ItemsMember names the body member holding the page's items when
	// the body is an object ("values", Bitbucket); empty when the body is
	// the array of items itself.
	ItemsMember string
}

// perPage returns the page size to ask for.
func (l *List) perPage(n int) int {
	max := l.MaxPerPage
	if max <= 0 {
		max = 100
	}
	return PerPage(n, max)
}

// first returns the first page's path with the page size parameters.
func (l *List) first(per int) string {
	if l.Paging == PagingNone {
		return l.Path
	}
	var b strings.Builder
	b.WriteString(l.Path)
	sep := byte('?')
	if strings.Contains(l.Path, "?") {
		sep = '&'
	}
	names := l.PerPageParams
	if len(names) == 0 {
		names = []string{"per_page"}
	}
	n := strconv.Itoa(per)
	for _, name := range names {
		b.WriteByte(sep)
		b.WriteString(QueryEscape(name))
		b.WriteByte('=')
		b.WriteString(n)
		sep = '&'
	}
	return b.String()
}

// numbered reports a style whose cursor is a page number.
func (l *List) numbered() bool {
	return l.Paging == PagingNextPage || l.Paging == PagingTotalPages || l.Paging == PagingPages
}

// List reads one page of l, perPage items (clamped to l.MaxPerPage): the
// first page when cursor is "", else the page the cursor names. It calls
// item once for each entry of the page, with j at the entry (read it with
// a field map's Read), and returns the next page's cursor, "" after the
// last page. The answer is judged as Get does.
//
// # Errors
//
// A cursor that names no page of this API (a URL elsewhere, or a page
// number for a style that follows URLs) is invalid_request, and nothing
// is sent; an answer that is not the JSON the list says is
// provider_error; and the errors of Get.
func (c *Caller) List(ctx context.Context, l *List, perPage int, cursor string, item func(j *JSON)) (next string, err error) {
	per := l.perPage(perPage)
	ref := l.first(per)
	page := 1
	switch {
	case cursor == "":
	case l.numbered() && isDigits(cursor) && len(cursor) < 10:
		page, _ = strconv.Atoi(cursor)
		name := l.PageParam
		if name == "" {
			name = "page"
		}
		ref += "&" + QueryEscape(name) + "=" + cursor
	case l.Paging == PagingNone:
		return "", ErrInvalidRequest("the list has one page: there is no cursor")
	case !l.numbered() || l.Paging == PagingNextPage:
		// PagingNextPage goes on through a Link URL when the answer
		// has no X-Next-Page header (GitLab's keyset pagination).
		if !c.Owns(cursor) {
			return "", ErrInvalidRequest("the cursor is not a page of this provider's API")
		}
		ref = cursor
	default:
		return "", ErrInvalidRequest("the cursor is not a page number of this list")
	}
	resp, err := c.Get(ctx, ref)
	if err != nil {
		return "", err
	}
	count := 0
	j := NewJSON(resp.Body)
	each := func() { count++; item(j) }
	var bodyNext string
	if l.ItemsMember == "" {
		j.Array(each)
	} else {
		nextName := l.NextMember
		if nextName == "" {
			nextName = "next"
		}
		j.Object(func(key []byte) {
			switch {
			case is(key, l.ItemsMember):
				j.Array(each)
			case l.Paging == PagingBodyNext && is(key, nextName):
				if !j.Null() {
					bodyNext = j.String()
				}
			}
		})
	}
	if err := j.Err(); err != nil {
		return "", err
	}
	switch l.Paging {
	case PagingNextPage:
		if _, ok := resp.Header["X-Next-Page"]; ok {
			return strings.TrimSpace(resp.Header.Get("X-Next-Page")), nil
		}
		return c.cursorOf(NextLink(resp.Header)), nil
	case PagingTotalPages:
		names := l.TotalPagesHeaders
		if len(names) == 0 {
			names = []string{"X-Total-Pages"}
		}
		for _, name := range names {
			if v := strings.TrimSpace(resp.Header.Get(name)); v != "" {
				if total, err := strconv.Atoi(v); err == nil && page < total {
					return strconv.Itoa(page + 1), nil
				}
				return "", nil
			}
		}
		// No header: the provider said nothing of what follows; a
		// full page may have more after it.
		return shortPage(count, per, page), nil
	case PagingBodyNext:
		return c.cursorOf(bodyNext), nil
	case PagingPages:
		return shortPage(count, per, page), nil
	case PagingNone:
		return "", nil
	}
	return c.cursorOf(NextLink(resp.Header)), nil
}

// shortPage returns the next page's number after page, which held count
// items of per asked for: "" after a short page.
func shortPage(count, per, page int) string {
	if count < per {
		return ""
	}
	return strconv.Itoa(page + 1)
}

// ListRepos reads one page of the user's repositories, a List of objects
// read with f: the whole of most providers' Repos operation.
//
//	var repos = plugin.List{Path: "/user/repos", Paging: plugin.PagingTotalPages, TotalPagesHeaders: []string{"total_page"}}
//
//	func (*gitee) Repos(ctx context.Context, r *plugin.ReposRequest) (*plugin.RepoPage, error) {
//		return api.ListRepos(ctx, r, &repos, plugin.GitHubRepoFields)
//	}
func (a API) ListRepos(ctx context.Context, r *ReposRequest, l *List, f RepoFields) (*RepoPage, error) {
	c, err := a.For(r.Endpoints, r.AccessToken)
	if err != nil {
		return nil, err
	}
	out := &RepoPage{Repos: make([]Repo, 0, l.perPage(r.PerPage))}
	out.NextCursor, err = c.List(ctx, l, r.PerPage, r.Cursor, func(j *JSON) { out.Repos = append(out.Repos, f.Read(j)) })
	if err != nil {
		return nil, err
	}
	return out, nil
}
