package httperr

import (
	"net/http"

	"github.com/vintner/arbor/service/membership"
)

// The stable codes of a policy refusal (package service/membership; the
// policy is package gateway/authz/policy).
const (
	CodeNotAllowed             = membership.CodeNotAllowed
	CodeRouteNotAllowed        = membership.CodeRouteNotAllowed
	CodeAccountDisabled        = membership.CodeAccountDisabled
	CodeMembershipsUnavailable = membership.CodeMembershipsUnavailable
)

// Denied is the 403 of a refused Verdict: its stable code, and as message
// the rule in words and what to do, which JSON also carries apart as
// "rule" and "fix". Every word comes from the configuration (the policy's
// Verdicts), never from the request. A browser gets Arbor's error page
// with the same text, so a refused sign-in (package gateway/signin), a
// refused credential (package gateway/authn) and a refused route (the
// Gate) explain themselves alike. v must be a refusal.
func Denied(v membership.Verdict) *Error {
	code := v.Code
	if code == "" {
		code = CodeForbidden // a bug: an admitting Verdict; refuse anyway
	}
	msg := v.Rule
	if v.Fix != "" {
		if msg != "" {
			msg += " "
		}
		msg += v.Fix
	}
	if msg == "" {
		msg = statusCodes[http.StatusForbidden].message
	}
	return &Error{Status: http.StatusForbidden, Code: code, Message: msg, Rule: v.Rule, Fix: v.Fix}
}
