package plugin

import "time"

// Field maps: a provider's user, repository and e-mail objects differ
// mostly in their members' names. A field map names them; its Read and
// Parse fill the SDK's types with the JSON reader, and Other reads what a
// name alone cannot say (a nested object, a flag with its own meaning).
// An empty name is not read.

// UserFields names the members of a provider's user object.
//
//	var userFields = plugin.UserFields{ID: "id", Login: "username", Name: "name", Email: "email",
//		AvatarURL: "avatar_url", ProfileURL: "web_url",
//		Other: func(j *plugin.JSON, key []byte, u *plugin.User) {
//			if string(key) == "confirmed_at" {
//				u.EmailVerified = j.String() != ""
//			}
//		}}
type UserFields struct {
	ID, Login, Name, Email, AvatarURL, ProfileURL string
	// Other, if set, is called for every member the names above do not
	// cover; a member it does not read is skipped.
	Other func(j *JSON, key []byte, u *User)
}

// Parse reads r's body, a user object. An object without the ID member is
// a provider_error: an account without a stable id cannot sign in.
func (f UserFields) Parse(r *Response) (*User, error) {
	u := &User{}
	ms := [...]member{{name: f.Login, str: &u.Login}, {name: f.Name, str: &u.Name}, {name: f.Email, str: &u.Email},
		{name: f.AvatarURL, str: &u.AvatarURL}, {name: f.ProfileURL, str: &u.ProfileURL}}
	j := NewJSON(r.Body)
	j.Object(func(key []byte) {
		switch {
		case is(key, f.ID):
			u.ID = j.Number() // a number, or a string (Bitbucket's uuid)
		case readMember(j, key, ms[:]):
		case f.Other != nil:
			f.Other(j, key, u)
		}
	})
	if err := j.Err(); err != nil {
		return nil, err
	}
	if u.ID == "" {
		return nil, ErrProvider(r.StatusCode, "the user object has no \""+f.ID+"\" member")
	}
	return u, nil
}

// RepoFields names the members of a provider's repository object. Private
// is a boolean member; UpdatedAt an RFC 3339 time.
type RepoFields struct {
	ID, FullName, Description, Private, DefaultBranch, HTMLURL, CloneURL, UpdatedAt string
	// Other, if set, is called for every member the names above do not
	// cover; a member it does not read is skipped.
	Other func(j *JSON, key []byte, r *Repo)
}

// GitHubRepoFields are the repository members of GitHub's REST API, which
// Gitea, Forgejo and Arbor's generic fake share.
var GitHubRepoFields = RepoFields{
	ID: "id", FullName: "full_name", Description: "description", Private: "private",
	DefaultBranch: "default_branch", HTMLURL: "html_url", CloneURL: "clone_url", UpdatedAt: "updated_at",
}

// Read reads one repository object.
func (f RepoFields) Read(j *JSON) Repo {
	var r Repo
	ms := [...]member{{name: f.FullName, str: &r.FullName}, {name: f.Description, str: &r.Description},
		{name: f.Private, flag: &r.Private}, {name: f.DefaultBranch, str: &r.DefaultBranch},
		{name: f.HTMLURL, str: &r.HTMLURL}, {name: f.CloneURL, str: &r.CloneURL}}
	j.Object(func(key []byte) {
		switch {
		case is(key, f.ID):
			r.ID = j.Number()
		case is(key, f.UpdatedAt):
			r.UpdatedAt = unixTime(j.String())
		case readMember(j, key, ms[:]):
		case f.Other != nil:
			f.Other(j, key, &r)
		}
	})
	return r
}

// Append reads body, a JSON array of repository objects, and appends them
// to dst.
//
//	repos, err := plugin.GitHubRepoFields.Append(make([]plugin.Repo, 0, per), resp.Body)
func (f RepoFields) Append(dst []Repo, body []byte) ([]Repo, error) {
	j := NewJSON(body)
	j.Array(func() { dst = append(dst, f.Read(j)) })
	return dst, j.Err()
}

// Email is one entry of a provider's list of a user's addresses.
type Email struct {
	Address           string
	Primary, Verified bool
}

// EmailFields names the members of a provider's e-mail address object.
// Primary and Verified are boolean members, unless PrimaryWhen or
// VerifiedWhen says what value of theirs means yes.
//
//	// Gitee: {"email": "…", "state": "confirmed", "scope": ["primary", "committed"]}
//	var gitee = plugin.EmailFields{Address: "email",
//		Verified: "state", VerifiedWhen: "confirmed",
//		Primary: "scope", PrimaryWhen: "primary"}
type EmailFields struct {
	Address, Primary, Verified string
	// PrimaryWhen, when set, makes the Primary member a string, or a
	// list of strings: the address is primary when it equals, or the
	// list contains, PrimaryWhen.
	PrimaryWhen string
	// VerifiedWhen does the same for the Verified member (Gitee's
	// state "confirmed").
	VerifiedWhen string
}

// GitHubEmailFields are the members of GitHub's GET /user/emails entries,
// which Gitea and Arbor's generic fake share.
var GitHubEmailFields = EmailFields{Address: "email", Primary: "primary", Verified: "verified"}

// Read reads one e-mail address object.
func (f EmailFields) Read(j *JSON) Email {
	var e Email
	ms := [...]member{{name: f.Address, str: &e.Address}, {name: f.Primary, flag: &e.Primary}, {name: f.Verified, flag: &e.Verified}}
	j.Object(func(key []byte) {
		switch {
		case f.PrimaryWhen != "" && is(key, f.Primary):
			e.Primary = hasValue(j, f.PrimaryWhen)
		case f.VerifiedWhen != "" && is(key, f.Verified):
			e.Verified = hasValue(j, f.VerifiedWhen)
		default:
			readMember(j, key, ms[:])
		}
	})
	return e
}

// Parse reads body, a JSON array of e-mail address objects.
//
//	list, err := plugin.GitHubEmailFields.Parse(resp.Body)
//	if err != nil {
//		return nil, err
//	}
//	if e, ok := plugin.PrimaryEmail(list); ok {
//		u.Email, u.EmailVerified = e.Address, e.Verified
//	}
func (f EmailFields) Parse(body []byte) ([]Email, error) {
	var list []Email
	j := NewJSON(body)
	j.Array(func() { list = append(list, f.Read(j)) })
	return list, j.Err()
}

// PrimaryEmail returns the first address of list marked primary, with the
// provider's own verified flag: the address to show and to trust only if
// verified. ok is false when no entry is primary; the caller then keeps
// what the user object said, unverified.
func PrimaryEmail(list []Email) (Email, bool) {
	for _, e := range list {
		if e.Primary && e.Address != "" {
			return e, true
		}
	}
	return Email{}, false
}

// member is a string or boolean member a field map names, and where its
// value goes (str or flag).
type member struct {
	name string
	str  *string
	flag *bool
}

// readMember reads the member key into the field of ms that names it, and
// reports whether one did.
func readMember(j *JSON, key []byte, ms []member) bool {
	for _, m := range ms {
		if !is(key, m.name) {
			continue
		}
		if m.flag != nil {
			*m.flag = j.Bool()
		} else {
			*m.str = j.String()
		}
		return true
	}
	return false
}

// is reports whether key is the member name, which is not empty. (The
// comparison does not allocate.)
func is(key []byte, name string) bool { return name != "" && string(key) == name }

// unixTime parses an RFC 3339 time (fractional seconds and an offset
// allowed, as Bitbucket writes them), 0 if it is empty or malformed.
func unixTime(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0
	}
	return t.Unix()
}
