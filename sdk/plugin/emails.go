package plugin

import "context"

// hasValue reads a string or a list of strings and reports whether it is,
// or holds, want. Other values are skipped and count as no.
func hasValue(j *JSON, want string) bool {
	switch j.Kind() {
	case '"':
		return j.String() == want
	case '[':
		found := false
		j.Array(func() {
			if j.Kind() == '"' {
				found = j.String() == want || found
			} else {
				j.Skip()
			}
		})
		return found
	}
	j.Skip()
	return false
}

// EmailChoice says which of a user's addresses counts.
type EmailChoice int

const (
	// EmailPrimary takes the entry marked primary with its own verified
	// flag (PrimaryEmail): the address to show, trusted only if
	// verified (GitHub, Bitbucket). The zero value.
	EmailPrimary EmailChoice = iota
	// EmailPrimaryElseVerified takes the primary entry, else the first
	// verified one (Gitea, whose primary address need not be listed
	// first).
	EmailPrimaryElseVerified
)

// Choose returns the address list's entry c picks; ok is false when none
// qualifies (the caller then keeps what the user object said).
func (c EmailChoice) Choose(list []Email) (e Email, ok bool) {
	if e, ok = PrimaryEmail(list); ok || c != EmailPrimaryElseVerified {
		return e, ok
	}
	for _, e := range list {
		if e.Verified && e.Address != "" {
			return e, true
		}
	}
	return Email{}, false
}

// EmailList declares where a provider lists the user's addresses with
// their primary and verified flags, for a user object that does not say
// whether its address is verified (GitHub, Gitea, Gitee, Bitbucket).
//
//	var emails = plugin.EmailList{List: plugin.List{Path: "/user/emails"},
//		Fields: plugin.GitHubEmailFields, Choice: plugin.EmailPrimaryElseVerified}
//
//	// Bitbucket: {"values": […], "next": "https://…"}, read until a page
//	// has the primary address, at most 5 pages.
//	var bitbucket = plugin.EmailList{List: plugin.List{Path: "/user/emails", Paging: plugin.PagingBodyNext,
//		ItemsMember: "values", PerPageParams: []string{"pagelen"}},
//		Fields: plugin.EmailFields{Address: "email", Primary: "is_primary", Verified: "is_confirmed"}, MaxPages: 5}
type EmailList struct {
	// List is where the addresses are and how they page.
	List
	// Fields name an entry's members.
	Fields EmailFields
	// Choice picks the address: EmailPrimary (the zero value) or
	// EmailPrimaryElseVerified.
	Choice EmailChoice
	// MaxPages bounds the pages read (1 when 0); reading stops at the
	// first page with a primary address. A next page the provider names
	// outside the API base (a body or Link URL elsewhere) is not followed:
	// it is a provider_error, as Ignore sees it.
	MaxPages int
	// Ignore, if set, is asked about an error of the list's requests:
	// true keeps the user object's address, unverified, instead of
	// failing the operation (GitHub answers 403 or 404 to a token without
	// the user:email scope).
	Ignore func(err error) bool
}

// Apply reads the list with c and sets u's address and verified flag to
// the address Choice picks. When none qualifies u keeps its address, and
// it counts as verified only if the user object said so.
func (l *EmailList) Apply(ctx context.Context, c *Caller, u *User) error {
	var list []Email
	cursor := ""
	pages := max(l.MaxPages, 1)
	for i := 0; i < pages; i++ {
		var next string
		var err error
		if cursor != "" && !isDigits(cursor) && !c.Owns(cursor) {
			// The provider's own next link: its error, not a caller's
			// bad cursor (invalid_request).
			err = ErrProvider(0, "the list at "+l.Path+" pointed its next page outside the API")
		} else {
			next, err = c.List(ctx, &l.List, 0, cursor, func(j *JSON) { list = append(list, l.Fields.Read(j)) })
		}
		if err != nil {
			if l.Ignore != nil && l.Ignore(err) {
				Log(LevelWarn, "cannot read the user's e-mail addresses ("+err.Error()+"); the address is treated as unverified")
				u.EmailVerified = false
				return nil
			}
			return err
		}
		if _, ok := PrimaryEmail(list); ok || next == "" {
			break
		}
		cursor = next
	}
	if e, ok := l.Choice.Choose(list); ok {
		u.Email, u.EmailVerified = e.Address, e.Verified
	}
	return nil
}
