package membership

import (
	"slices"
	"time"
)

// Member is one user's standing as every request sees it: whether an
// operator disabled them, their verified e-mail addresses, and their groups
// at the login providers. The Service builds one per user from the store and
// shares it read-only until the user's record changes; nothing may modify a
// Member it was given.
type Member struct {
	UserID string
	// Disabled: an operator disabled the user (data.User.Disabled).
	Disabled bool
	// Emails are the user's verified addresses, lower case.
	Emails []string
	// Groups are "<provider>:<group>" names, sorted (data.Memberships).
	Groups []string
	// Restricted are groups the provider hid from Arbor (an organisation
	// that has not approved the OAuth app), sorted.
	Restricted []string
	// CheckedAt is when the groups were last fetched successfully.
	CheckedAt time.Time
	// Unavailable: the providers have not answered for longer than the
	// grace period, so the last known groups no longer count.
	Unavailable bool

	// Verdict is the policy's answer for this member (Judge.Admit), computed
	// when the Member was built. The zero Verdict admits.
	Verdict Verdict
	// Visible are the groups the upstream app may see (Judge.Visible),
	// and VisibleHeader the same joined with "," for the groups header;
	// computed when the Member was built so that no request allocates them.
	Visible       []string
	VisibleHeader string
}

// InGroup reports whether m is in group ("github:vintner/platform"). It does
// not allocate.
func (m *Member) InGroup(group string) bool {
	_, ok := slices.BinarySearch(m.Groups, group)
	return ok
}

// HasEmail reports whether addr (lower case) is one of m's verified
// addresses.
func (m *Member) HasEmail(addr string) bool {
	return slices.Contains(m.Emails, addr)
}

// Denial codes: the stable `error` codes of a refused sign-in or request.
const (
	// CodeNotAllowed: the user passes none of policy.allow's rules.
	CodeNotAllowed = "not_allowed"
	// CodeRouteNotAllowed: the user may sign in but not reach this path.
	CodeRouteNotAllowed = "route_not_allowed"
	// CodeAccountDisabled: an operator disabled the user.
	CodeAccountDisabled = "account_disabled"
	// CodeMembershipsUnavailable: the providers have not answered for
	// longer than policy.grace_period.
	CodeMembershipsUnavailable = "memberships_unavailable"
)

// The refusals of a disabled member and of one whose providers have not
// answered for longer than the grace period, in the only words users get
// (docs/policy.md quotes them). The Service decides both before its Judge
// is asked; a Judge handed such a Member refuses with these same Verdicts.
var (
	VerdictDisabled = Verdict{Code: CodeAccountDisabled,
		Rule: "An administrator has disabled your account.",
		Fix:  "Ask an administrator to enable it again."}
	VerdictUnavailable = Verdict{Code: CodeMembershipsUnavailable,
		Rule: "Your groups at the sign-in provider could not be checked for longer than this site allows.",
		Fix:  "Sign in again; if it keeps failing, the provider may be down or may have revoked this site's access, so try again later or tell an administrator."}
)

// Verdict is a policy decision. The zero Verdict admits; a refusal has a
// Code and says, in words a user understands, which rule applied (Rule)
// and what to do (Fix).
type Verdict struct {
	Code string
	Rule string
	Fix  string
}

// Admitted reports whether v lets the user in.
func (v Verdict) Admitted() bool { return v.Code == "" }

// Judge decides whether a member may sign in and stay signed in (the
// policy's allow rules; package gateway/authz/policy implements it from
// config). It must not keep m.
type Judge interface {
	Admit(m *Member) Verdict
	// Visible returns the groups of m the upstream may see (only those the
	// policy mentions unless configured otherwise), already capped in size.
	Visible(m *Member) []string
}
