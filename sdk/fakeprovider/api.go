package fakeprovider

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// apiKind is why an API request failed; apiError renders it per flavor.
type apiKind string

const (
	apiMissing        apiKind = "missing_token"      // no credentials
	apiUnknown        apiKind = "unknown_token"      // never issued
	apiExpired        apiKind = "expired_token"      // past its lifetime
	apiRevoked        apiKind = "revoked_token"      // revoked or rotated away
	apiBadCredentials apiKind = "bad_credentials"    // GitHub revoke: wrong Basic client credentials
	apiScope          apiKind = "insufficient_scope" // token lacks RequiredScopes
	apiScopeForbidden apiKind = "scope_forbidden"    // GitHub: a lacking scope answered 403, as /user/orgs documents
	apiOrgRestricted  apiKind = "org_restricted"     // GitHub: OAuth app access restrictions (Config.RestrictedOrgs)
	apiNotFound       apiKind = "not_found"
	apiMethod         apiKind = "method_not_allowed"
	apiValidation     apiKind = "validation_failed" // GitHub 422
	apiInjected       apiKind = "injected"          // FailNext
	apiNoAccess       apiKind = "no_access"         // Bitbucket: not a member of the workspace
	apiGone           apiKind = "gone"              // Config.GonePaths
)

// created is the fixed creation time of every fake account and repository.
var created = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// handleAPI authenticates the access token and answers user, emails or
// repos in the configured flavor.
func (p *Provider) handleAPI(w http.ResponseWriter, r *http.Request, c *Call, ep Endpoint, params map[string]string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		p.apiError(w, r, c, http.StatusMethodNotAllowed, apiMethod)
		return
	}
	tok, present := p.bearer(r)
	c.Token = Fingerprint(tok)
	if !present {
		p.apiError(w, r, c, http.StatusUnauthorized, apiMissing)
		return
	}
	p.mu.Lock()
	t := p.access[tok]
	var (
		kind   apiKind
		user   *User
		scopes []string
	)
	if t != nil {
		c.DeadToken = t.dead(p.cfg.Now())
	}
	switch {
	case t == nil:
		kind = apiUnknown
	case c.DeadToken == "revoked", c.DeadToken == "replaced":
		kind = apiRevoked
	case c.DeadToken == "expired":
		kind = apiExpired
	default:
		user, scopes = t.user, slices.Clone(t.scopes)
	}
	p.mu.Unlock()
	if user == nil {
		p.apiError(w, r, c, http.StatusUnauthorized, kind)
		return
	}
	c.User = user.Login
	if p.cfg.Flavor == FlavorGitHub {
		p.rateLimitHeaders(w.Header(), false)
	}
	required := p.cfg.RequiredScopes[ep]
	if p.cfg.ScopesHeader {
		w.Header().Set("X-OAuth-Scopes", strings.Join(scopes, ", "))
		w.Header().Set("X-Accepted-OAuth-Scopes", strings.Join(required, ", "))
	}
	if len(required) > 0 && !slices.ContainsFunc(required, func(s string) bool { return slices.Contains(scopes, s) }) {
		kind := apiScope
		if p.cfg.Flavor == FlavorGitHub && (ep == EndpointOrgs || ep == EndpointTeams) {
			kind = apiScopeForbidden
		}
		p.apiError(w, r, c, http.StatusForbidden, kind, scopes, required)
		return
	}
	switch ep {
	case EndpointUser:
		writeJSON(w, http.StatusOK, p.userJSON(r, user, scopes))
	case EndpointEmails:
		p.writeList(w, r, p.emailsJSON(r, user))
	case EndpointRepos:
		if p.cfg.Flavor == FlavorBitbucket {
			p.bitbucketRepos(w, r, c, user, params["workspace"])
			return
		}
		if id, ok := params["installation_id"]; ok {
			p.writeInstallationRepos(w, r, c, user, id)
			return
		}
		p.writeList(w, r, p.reposJSON(r, user, p.visibleCount(user)))
	case EndpointWorkspaces:
		p.writeList(w, r, p.bitbucketWorkspacesJSON(r, user))
	case EndpointInstallations:
		p.writeInstallations(w, r, user)
	case EndpointOrgs:
		p.writeList(w, r, p.githubOrgsJSON(r, user))
	case EndpointTeams:
		p.writeList(w, r, p.githubTeamsJSON(r, user))
	case EndpointOrgMembership:
		p.githubOrgMembership(w, r, c, user, params["org"])
	case EndpointGroups:
		if p.cfg.Flavor == FlavorGeneric {
			p.writeList(w, r, p.genericGroupsJSON(user))
			return
		}
		p.writeList(w, r, p.gitlabGroupsJSON(r, user))
	}
}

// bearer extracts the access token: Authorization with one of the
// accepted schemes, or ?access_token= when allowed.
func (p *Provider) bearer(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" && !p.cfg.APITokenQueryOnly {
		scheme, tok, _ := strings.Cut(h, " ")
		for _, s := range p.cfg.APIAuthSchemes {
			if strings.EqualFold(scheme, s) {
				tok = strings.TrimSpace(tok)
				return tok, tok != ""
			}
		}
		return "", false
	}
	if p.cfg.AccessTokenQueryParam {
		if tok := r.URL.Query().Get("access_token"); tok != "" {
			return tok, true
		}
	}
	return "", false
}

// apiError answers an API error in the flavor's format. For apiScope,
// extra holds the granted and the required scopes.
func (p *Provider) apiError(w http.ResponseWriter, r *http.Request, c *Call, status int, kind apiKind, extra ...[]string) {
	c.Error = string(kind)
	text := http.StatusText(status)
	h := w.Header()
	switch p.cfg.Flavor {
	case FlavorGitHub:
		// "Troubleshooting the REST API": a token without the needed scope
		// sees 404, not 403, for resources it may not know exist.
		if kind == apiScope {
			status, kind = http.StatusNotFound, apiNotFound
		}
		msg := text
		switch kind {
		case apiMissing:
			msg = "Requires authentication"
		case apiUnknown, apiExpired, apiRevoked, apiBadCredentials:
			msg = "Bad credentials"
		case apiNotFound:
			msg = "Not Found"
		case apiValidation:
			msg = "Invalid request.\n\n\"access_token\" wasn't supplied."
		case apiScopeForbidden:
			// The documentation gives the status, not the text.
			msg = "Forbidden"
		case apiOrgRestricted:
			msg = githubRestrictedMessage(extraOrg(extra))
		}
		writeJSON(w, status, fields{{"message", msg}, {"documentation_url", "https://docs.github.com/rest"}, {"status", strconv.Itoa(status)}})

	case FlavorGitLab:
		switch kind {
		case apiExpired, apiRevoked:
			desc := "Token is expired. You can either do re-authorization or token refresh."
			if kind == apiRevoked {
				desc = "Token was revoked. You have to re-authorize from the user."
			}
			h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="Protected by OAuth 2.0", error="invalid_token", error_description=%q`, desc))
			writeJSON(w, status, fields{{"error", "invalid_token"}, {"error_description", desc}})
		case apiScope:
			writeJSON(w, status, fields{{"error", "insufficient_scope"},
				{"error_description", "The request requires higher privileges than provided by the access token."},
				{"scope", strings.Join(extra[1], " ")}})
		case apiNotFound, apiMethod:
			writeJSON(w, status, fields{{"error", fmt.Sprintf("%d %s", status, text)}})
		default:
			writeJSON(w, status, fields{{"message", fmt.Sprintf("%d %s", status, text)}})
		}

	case FlavorBitbucket:
		msg := text
		var detail any
		switch kind {
		case apiMissing:
			msg = "Authentication required."
		case apiExpired:
			msg = "Access token expired. Use your refresh token to obtain a new access token."
		case apiUnknown, apiRevoked:
			msg = "Token is invalid, expired, or not supported for this endpoint."
		case apiScope:
			msg = "Your credentials lack one or more required privilege scopes."
			detail = map[string][]string{"granted": extra[0], "required": extra[1]}
		case apiNotFound:
			msg = "Resource not found"
		case apiNoAccess:
			msg = bitbucketNoAccess
		case apiGone:
			writeJSON(w, status, bitbucketGoneBody())
			return
		}
		e := fields{{"message", msg}}
		if detail != nil {
			e = append(e, kv{"detail", detail})
		}
		writeJSON(w, status, fields{{"type", "error"}, {"error", e}})

	case FlavorGoogle:
		code, desc := "invalid_request", text
		switch kind {
		case apiMissing, apiUnknown, apiExpired, apiRevoked:
			desc = "Invalid Credentials"
			h.Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		case apiScope:
			code, desc = "insufficient_scope", "Insufficient Permission"
		case apiNotFound:
			code = "not_found"
		case apiInjected:
			code = "server_error"
		}
		writeJSON(w, status, fields{{"error", code}, {"error_description", desc}})

	default: // RFC 6750 section 3
		code, desc := "invalid_request", text
		switch kind {
		case apiMissing:
			h.Set("WWW-Authenticate", `Bearer realm="`+p.cfg.Name+`"`)
			code, desc = "invalid_token", "No access token."
		case apiUnknown, apiExpired, apiRevoked:
			h.Set("WWW-Authenticate", `Bearer realm="`+p.cfg.Name+`", error="invalid_token"`)
			code, desc = "invalid_token", "The access token is "+strings.TrimSuffix(string(kind), "_token")+"."
		case apiScope:
			code, desc = "insufficient_scope", "Requires one of: "+strings.Join(extra[1], " ")
		case apiNotFound:
			code = "not_found"
		case apiInjected:
			code = "server_error"
		}
		writeJSON(w, status, fields{{"error", code}, {"error_description", desc}})
	}
}

// base is the fake's externally visible URL for absolute links.
func (p *Provider) base(r *http.Request) string {
	if p.cfg.BaseURL != "" {
		return p.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// PrimaryEmail is the e-mail the provider reports as the user's: the one
// marked Primary, else the first, and nil for a user without any.
func (u *User) PrimaryEmail() *Email {
	for i := range u.Emails {
		if u.Emails[i].Primary {
			return &u.Emails[i]
		}
	}
	if len(u.Emails) > 0 {
		return &u.Emails[0]
	}
	return nil
}

// nullable returns nil for "" so that JSON says null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// bitbucketUUID derives a stable "{…}" UUID from an id and a salt.
func bitbucketUUID(id int64, salt int) string {
	return fmt.Sprintf("{%08x-%04x-4%03x-8%03x-%012x}", uint32(id), uint16(salt), 0xfa, 0xce, id*1000+int64(salt))
}

// googleSub derives Google's 21-digit subject from the user id.
func googleSub(u *User) string { return fmt.Sprintf("1%020d", u.ID) }

func (p *Provider) userJSON(r *http.Request, u *User, scopes []string) any {
	base := p.base(r)
	avatar := base + "/avatars/" + url.PathEscape(u.Login) + ".png"
	pe := u.PrimaryEmail()
	email := ""
	if pe != nil {
		email = pe.Address
	}
	switch p.cfg.Flavor {
	case FlavorGitHub:
		public := email
		if u.PrivateEmail {
			public = ""
		}
		npublic := 0
		for i := 1; i <= u.Repos; i++ {
			if i%3 != 0 {
				npublic++
			}
		}
		return fields{
			{"login", u.Login}, {"id", u.ID}, {"node_id", fmt.Sprintf("MDQ6VXNlcj%d", u.ID)},
			{"avatar_url", avatar}, {"html_url", base + "/" + u.Login}, {"type", "User"},
			{"site_admin", false}, {"name", nullable(u.Name)}, {"company", nil}, {"blog", ""},
			{"location", nil}, {"email", nullable(public)}, {"bio", nil},
			{"public_repos", npublic}, {"followers", 0}, {"following", 0},
			{"created_at", created.Format(time.RFC3339)}, {"updated_at", created.Format(time.RFC3339)},
		}
	case FlavorGitLab:
		return fields{
			{"id", u.ID}, {"username", u.Login}, {"name", u.Name}, {"state", "active"},
			{"locked", false}, {"avatar_url", avatar}, {"web_url", base + "/" + u.Login},
			{"created_at", created.Format(time.RFC3339)}, {"bio", ""},
			{"public_email", nullable(email)}, {"email", email}, {"commit_email", email},
			{"confirmed_at", created.Format(time.RFC3339)}, {"two_factor_enabled", false},
		}
	case FlavorBitbucket:
		return fields{
			{"type", "user"}, {"account_id", "557058:" + strings.Trim(bitbucketUUID(u.ID, 0), "{}")},
			{"uuid", bitbucketUUID(u.ID, 0)}, {"username", u.Login}, {"nickname", u.Login},
			{"display_name", u.Name}, {"account_status", "active"},
			{"created_on", created.Format(time.RFC3339)},
			{"links", map[string]any{
				"self":   map[string]string{"href": base + "/2.0/users/" + url.PathEscape(bitbucketUUID(u.ID, 0))},
				"html":   map[string]string{"href": base + "/" + u.Login + "/"},
				"avatar": map[string]string{"href": avatar},
			}},
		}
	case FlavorGoogle:
		// OpenID Connect Core 5.4: email claims need the email scope,
		// name and picture the profile scope.
		out := fields{{"sub", googleSub(u)}}
		if slices.Contains(scopes, "profile") {
			out = append(out, kv{"name", u.Name}, kv{"picture", avatar})
			if given, family, ok := strings.Cut(u.Name, " "); ok {
				out = append(out, kv{"given_name", given}, kv{"family_name", family})
			}
		}
		if slices.Contains(scopes, "email") && pe != nil {
			out = append(out, kv{"email", pe.Address}, kv{"email_verified", pe.Verified})
		}
		p.mu.Lock()
		hd := p.googleHostedDomainLocked(u)
		p.mu.Unlock()
		if hd != "" {
			out = append(out, kv{"hd", hd})
		}
		return out
	}
	return p.shapedUser(r, u)
}

func (p *Provider) emailsJSON(r *http.Request, u *User) []any {
	out := make([]any, 0, len(u.Emails))
	for _, e := range u.Emails {
		switch p.cfg.Flavor {
		case FlavorGitHub:
			var vis any
			if e.Primary {
				vis = "public"
				if u.PrivateEmail {
					vis = "private"
				}
			}
			out = append(out, fields{{"email", e.Address}, {"primary", e.Primary}, {"verified", e.Verified}, {"visibility", vis}})
		case FlavorBitbucket:
			out = append(out, fields{{"is_primary", e.Primary}, {"is_confirmed", e.Verified}, {"type", "email"},
				{"email", e.Address}, {"links", map[string]any{
					"self": map[string]string{"href": p.base(r) + "/2.0/user/emails/" + url.PathEscape(e.Address)}}}})
		default:
			out = append(out, p.cfg.EmailShape.shapedEmail(e))
		}
	}
	return out
}

// reposJSON returns the user's first n generated repositories.
func (p *Provider) reposJSON(r *http.Request, u *User, n int) []any {
	base := p.base(r)
	bu, _ := url.Parse(base)
	out := make([]any, 0, n)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("repo-%03d", i)
		full := u.Login + "/" + name
		web := base + "/" + full
		private := i%3 == 0
		branch := "main"
		if i%7 == 0 {
			branch = "master"
		}
		id := u.ID*100000 + int64(i)
		switch p.cfg.Flavor {
		case FlavorGitHub:
			vis := "public"
			if private {
				vis = "private"
			}
			out = append(out, fields{
				{"id", id}, {"node_id", fmt.Sprintf("R_kgDO%d", id)}, {"name", name}, {"full_name", full},
				{"private", private}, {"owner", fields{{"login", u.Login}, {"id", u.ID}, {"type", "User"}}},
				{"html_url", web}, {"description", nil}, {"fork", false},
				{"url", base + "/repos/" + full}, {"clone_url", web + ".git"},
				{"ssh_url", "git@" + bu.Hostname() + ":" + full + ".git"},
				{"default_branch", branch}, {"visibility", vis},
				{"created_at", created.Format(time.RFC3339)},
			})
		case FlavorGitLab:
			vis := "public"
			switch {
			case private:
				vis = "private"
			case i%5 == 0:
				vis = "internal"
			}
			out = append(out, fields{
				{"id", id}, {"description", nil}, {"name", name}, {"name_with_namespace", u.Name + " / " + name},
				{"path", name}, {"path_with_namespace", full}, {"created_at", created.Format(time.RFC3339)},
				{"default_branch", branch}, {"ssh_url_to_repo", "git@" + bu.Hostname() + ":" + full + ".git"},
				{"http_url_to_repo", web + ".git"}, {"web_url", web}, {"visibility", vis},
				{"namespace", fields{{"id", u.ID}, {"name", u.Name}, {"path", u.Login}, {"kind", "user"}, {"full_path", u.Login}}},
			})
		case FlavorBitbucket:
			out = append(out, bitbucketRepoJSON(base, personalWorkspace(u), u.Login, i))
		default:
			out = append(out, shapedRepo(p.cfg.RepoFields, map[string]any{
				"id": id, "name": name, "full_name": full, "private": private,
				"owner_login": u.Login, "owner_id": u.ID,
				"html_url": web, "clone_url": web + ".git", "default_branch": branch,
			}))
		}
	}
	if p.cfg.Flavor == FlavorGitLab {
		// GitLab's default order is created_at descending: newest first.
		slices.Reverse(out)
	}
	return out
}

// writeList answers one page of items in the configured pagination style.
func (p *Provider) writeList(w http.ResponseWriter, r *http.Request, items []any) {
	p.writeWrappedList(w, r, items, nil)
}

// writeWrappedList is writeList for Link-paginated lists whose body is an
// object (GitHub's {"total_count": …, "installations": […]}): wrap builds
// it from the total and the page's items; nil means a bare array.
func (p *Provider) writeWrappedList(w http.ResponseWriter, r *http.Request, items []any, wrap func(total int, page []any) any) {
	q := r.URL.Query()
	names := p.cfg.PagingNames
	pageParam, sizeParam := or(names.Page, "page"), or(names.PerPage, "per_page")
	if p.cfg.Pagination == PaginationBitbucket {
		sizeParam = or(names.PerPage, "pagelen")
	}
	page, _ := strconv.Atoi(q.Get(pageParam))
	page = max(page, 1)
	size, _ := strconv.Atoi(q.Get(sizeParam))
	if size <= 0 {
		size = p.cfg.PageSize
	}
	size = min(size, p.cfg.MaxPageSize)
	total := len(items)
	last := max((total+size-1)/size, 1)
	lo := min((page-1)*size, total)
	hi := min(lo+size, total)
	pageItems := items[lo:hi]

	link := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "access_token" {
				v[k] = vs
			}
		}
		v.Set(pageParam, strconv.Itoa(n))
		v.Set(sizeParam, strconv.Itoa(size))
		return p.base(r) + r.URL.Path + "?" + v.Encode()
	}
	h := w.Header()
	switch p.cfg.Pagination {
	case PaginationBitbucket:
		body := fields{{"pagelen", size}, {"size", total}, {"page", page}}
		if page < last {
			body = append(body, kv{or(names.Next, "next"), link(page + 1)})
		}
		if page > 1 {
			body = append(body, kv{"previous", link(min(page-1, last))})
		}
		body = append(body, kv{or(names.Items, "values"), pageItems})
		writeJSON(w, http.StatusOK, body)
		return
	case PaginationGitLab:
		next, prev := "", ""
		if page < last {
			next = strconv.Itoa(page + 1)
		}
		if page > 1 {
			prev = strconv.Itoa(min(page-1, last))
		}
		h.Set("X-Page", strconv.Itoa(page))
		h.Set("X-Per-Page", strconv.Itoa(size))
		h.Set(or(names.NextPage, "X-Next-Page"), next)
		h.Set("X-Prev-Page", prev)
		h.Set(or(names.TotalCount, "X-Total"), strconv.Itoa(total))
		h.Set(or(names.TotalPages, "X-Total-Pages"), strconv.Itoa(last))
		var rels []string
		if prev != "" {
			rels = append(rels, fmt.Sprintf(`<%s>; rel="prev"`, link(min(page-1, last))))
		}
		if next != "" {
			rels = append(rels, fmt.Sprintf(`<%s>; rel="next"`, link(page+1)))
		}
		rels = append(rels, fmt.Sprintf(`<%s>; rel="first"`, link(1)), fmt.Sprintf(`<%s>; rel="last"`, link(last)))
		h.Set("Link", strings.Join(rels, ", "))
	case PaginationTotalPages:
		h.Set(or(names.TotalPages, "X-Total-Pages"), strconv.Itoa(last))
		h.Set(or(names.TotalCount, "X-Total"), strconv.Itoa(total))
	default:
		var rels []string
		if page > 1 {
			rels = append(rels, fmt.Sprintf(`<%s>; rel="prev"`, link(min(page-1, last))))
		}
		if page < last {
			rels = append(rels, fmt.Sprintf(`<%s>; rel="next"`, link(page+1)), fmt.Sprintf(`<%s>; rel="last"`, link(last)))
		}
		if page > 1 {
			rels = append(rels, fmt.Sprintf(`<%s>; rel="first"`, link(1)))
		}
		if len(rels) > 0 {
			h.Set("Link", strings.Join(rels, ", "))
		}
		if p.cfg.TotalCountHeader {
			h.Set(or(names.TotalCount, "X-Total-Count"), strconv.Itoa(total))
		}
	}
	if wrap != nil {
		writeJSON(w, http.StatusOK, wrap(total, pageItems))
		return
	}
	writeJSON(w, http.StatusOK, pageItems)
}
