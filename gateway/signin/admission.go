package signin

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway"
	"github.com/vintner/arbor/gateway/pages"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/service/membership"
)

// admit asks the policy (Options.Admission) whether the person the
// provider vouched for may sign in. It runs before the user is looked up
// for writing or created: a refused person leaves no user, no identity and
// no session behind, and gets no session cookie.
func (w *SignIn) admit(c *fiber.Ctx, provider string, p profile, tok *abi.Token) (membership.Admission, *flowError) {
	adm, err := w.opts.Admission.SignIn(c.UserContext(), provider, p.subject,
		membership.Profile{Email: p.email, EmailVerified: p.emailVerified}, tok)
	if err != nil {
		return adm, storeFailed("Sign-in failed",
			"Arbor could not check whether you may sign in. Please try again in a moment.", err)
	}
	if !adm.Admitted() {
		userID := ""
		if adm.Member != nil {
			userID = adm.Member.UserID
		}
		return adm, w.refused(c, provider, userID, adm.Verdict)
	}
	return adm, nil
}

// refused is the page of a sign-in the policy refused (pages.Denied):
// 403 with the Verdict's code, the rule that applied and what to do,
// audited as a refused "session.sign_in".
func (w *SignIn) refused(c *fiber.Ctx, provider, userID string, v membership.Verdict) *flowError {
	w.audit(c, data.AuditEvent{Action: "session.sign_in", Actor: userID, UserID: userID, Target: provider, Outcome: "refused",
		Details: map[string]string{"code": v.Code}})
	gateway.Logger(c).Info("sign-in refused by the policy", "provider", provider, "user_id", userID, "code", v.Code)
	fe := fail(http.StatusForbidden, v.Code, pages.DeniedTitle, v.Explain(), nil)
	fe.denied = &v
	return fe
}
