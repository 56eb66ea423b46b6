package gitproxy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vintner/arbor/gateway/httperr"
	"github.com/vintner/arbor/service/connections"
)

// Stable error codes of the Git proxy (besides authn.CodeRepoUnauthorized,
// httperr's bad_path, body_too_large, unknown_provider, store_unavailable
// and connections' provider_* codes).
const (
	// CodeNotSmartHTTP: a dumb-HTTP request, or a path under /git/ that is
	// not one of smart HTTP's.
	CodeNotSmartHTTP = "git_smart_http_only"
	// CodePushRefused: a push with a credential without git:write.
	CodePushRefused = "git_push_refused"
	// CodeRepoForbidden: the credential's patterns exclude the repository.
	CodeRepoForbidden = "git_repo_forbidden"
	// CodeRepoNotFound: the provider has no such repository, or the
	// connection's account cannot see it.
	CodeRepoNotFound = "git_repo_not_found"
	// CodeTokenRefused: the Git host refused the connection's token.
	CodeTokenRefused = "provider_token_refused"
	// CodeProviderTimeout: the Git host did not answer in time.
	CodeProviderTimeout = "provider_timeout"
)

// tokenError maps the broker's answer to what the Git client sees; the
// message says what to do, in the owner's words.
func (p *Proxy) tokenError(req request, err error) *httperr.Error {
	integrations := strings.TrimRight(p.cfg.PublicURL, "/") + "/integrations"
	var ce *connections.Error
	errors.As(err, &ce)
	switch {
	case errors.Is(err, connections.ErrNotConnected):
		return httperr.Wrap(err, http.StatusForbidden, connections.CodeNotConnected,
			fmt.Sprintf("The owner of this repository credential has no %s connection in Arbor. They must connect %s at %s; the credential then works as it is.", req.provider, req.provider, integrations))
	case errors.Is(err, connections.ErrReconnectRequired):
		return httperr.Wrap(err, http.StatusForbidden, connections.CodeReconnectRequired,
			fmt.Sprintf("The %s connection of this repository credential's owner needs reconnecting (%s refused to renew its token). They must press Reconnect at %s; the credential then works again as it is.", req.provider, req.provider, integrations))
	case errors.Is(err, connections.ErrRateLimited):
		e := httperr.Wrap(err, http.StatusServiceUnavailable, connections.CodeProviderRateLimited,
			fmt.Sprintf("%s is rate limiting Arbor's token renewals; try again later.", req.provider))
		if ce != nil {
			e = e.WithRetryAfter(ce.RetryAfter)
		}
		return e
	case errors.Is(err, connections.ErrUnknownProvider):
		return httperr.Wrap(err, http.StatusServiceUnavailable, httperr.CodeUnknownProvider,
			fmt.Sprintf("Arbor's %s provider is not loaded right now; try again in a moment, or ask the operator.", req.provider))
	case errors.Is(err, connections.ErrStoreUnavailable):
		return httperr.StoreUnavailable(err, "Arbor could not read the connection; try again in a moment.")
	default: // unavailable, refresh or lock timeout, internal
		return httperr.Wrap(err, http.StatusServiceUnavailable, connections.CodeProviderUnavailable,
			fmt.Sprintf("Arbor could not get a token from %s right now; try again in a moment.", req.provider))
	}
}

// statusError maps a Git host's refusal to what the Git client sees. Its
// body is not relayed: it may name the token's account or hold HTML.
func (p *Proxy) statusError(req request, res *http.Response) *httperr.Error {
	integrations := strings.TrimRight(p.cfg.PublicURL, "/") + "/integrations"
	cause := fmt.Errorf("%s Git host answered %s", req.provider, res.Status)
	switch s := res.StatusCode; {
	case s == http.StatusUnauthorized:
		return httperr.Wrap(cause, http.StatusForbidden, CodeTokenRefused,
			fmt.Sprintf("%s refused the token of the credential owner's connection (revoked at %s?). They must press Reconnect at %s.", req.provider, req.provider, integrations))
	case s == http.StatusNotFound || s == http.StatusGone:
		return httperr.Wrap(cause, http.StatusNotFound, CodeRepoNotFound,
			fmt.Sprintf("%s has no repository %s, or the credential owner's %s account cannot read it.", req.provider, req.repo, req.provider))
	case s == http.StatusTooManyRequests || (s == http.StatusForbidden && res.Header.Get("Retry-After") != ""):
		e := httperr.Wrap(cause, http.StatusTooManyRequests, connections.CodeProviderRateLimited,
			fmt.Sprintf("%s is rate limiting the credential owner's account; try again later.", req.provider))
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
			e = e.WithRetryAfter(time.Duration(secs) * time.Second)
		}
		return e
	case s == http.StatusForbidden:
		return httperr.Wrap(cause, http.StatusForbidden, connections.CodeProviderRefused,
			fmt.Sprintf("%s refused access to %s for the credential owner's account (missing permission or scope).", req.provider, req.repo))
	case s >= 300 && s < 400:
		return httperr.Wrap(cause, http.StatusBadGateway, connections.CodeProviderRefused,
			fmt.Sprintf("%s redirected the request (a renamed or moved repository?); use the repository's current path.", req.provider))
	case s >= 500:
		return httperr.Wrap(cause, http.StatusBadGateway, connections.CodeProviderUnavailable,
			fmt.Sprintf("%s's Git host failed (%d); try again later.", req.provider, s))
	default:
		return httperr.Wrap(cause, http.StatusBadGateway, connections.CodeProviderRefused,
			fmt.Sprintf("%s refused the request (%d).", req.provider, s))
	}
}

// transportError maps a failure to reach the Git host.
func transportError(req request, err error, tooBig bool, limit int64) *httperr.Error {
	var ne interface{ Timeout() bool }
	switch {
	case tooBig:
		return tooLarge(limit)
	case errors.As(err, &ne) && ne.Timeout():
		return httperr.Wrap(err, http.StatusGatewayTimeout, CodeProviderTimeout,
			fmt.Sprintf("%s's Git host did not answer in time; try again later.", req.provider))
	default:
		return httperr.Wrap(err, http.StatusBadGateway, connections.CodeProviderUnavailable,
			fmt.Sprintf("Arbor could not reach %s's Git host; try again later.", req.provider))
	}
}
