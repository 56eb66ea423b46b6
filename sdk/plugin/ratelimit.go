package plugin

import (
	"strconv"
	"strings"
	"time"

	"github.com/vintner/arbor/sdk/abi"
)

// now is the clock RateLimit reads (the guest has one through WASI); tests
// replace it.
var now = time.Now

// RateLimit reports whether r is a provider's "slow down" and, if so, how
// many seconds to wait (between abi.MinRetryAfter and abi.MaxRetryAfter).
// CheckResponse and ParseTokenResponse use it; a plugin that handles
// statuses itself should call it before reading a 403 as anything else.
//
// A response is a rate limit when:
//
//   - its status is 429, from any provider (GitLab:
//     https://docs.gitlab.com/security/rate_limits/, Bitbucket Cloud:
//     https://support.atlassian.com/bitbucket-cloud/docs/api-request-limits/);
//   - its status is 403 and GitHub's x-ratelimit-remaining is "0" (primary
//     limit), or it carries retry-after, or its JSON "message" mentions a
//     rate limit ("You have exceeded a secondary rate limit…", "API rate
//     limit exceeded…"), whatever x-ratelimit-remaining says (secondary
//     limit: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit).
//
// A 403 with none of these is not a rate limit: GitHub answers 403 for a
// missing scope or permission too, and retrying those never helps.
//
// The wait, in GitHub's documented order: Retry-After (delta seconds or an
// HTTP-date, RFC 9110 section 10.2.3); else, when x-ratelimit-remaining is
// "0", until x-ratelimit-reset (UTC epoch seconds); else until GitLab's
// RateLimit-Reset (epoch seconds); else abi.DefaultRetryAfter (GitHub's
// "wait for at least one minute"; Bitbucket documents no header). A time
// already past means one second.
func RateLimit(r *Response) (retryAfter int, limited bool) {
	switch r.StatusCode {
	case 429:
	case 403:
		if r.Header.Get("X-RateLimit-Remaining") != "0" && r.Header.Get("Retry-After") == "" && !mentionsRateLimit(r.Body) {
			return 0, false
		}
	default:
		return 0, false
	}
	return retryAfterOf(r.Header, now()), true
}

// retryAfterOf reads how long the headers ask to wait, in whole seconds
// rounded up and clamped.
func retryAfterOf(h Header, at time.Time) int {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return clampSeconds(n)
		}
		if t, ok := parseHTTPDate(v); ok {
			return until(t, at)
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if t, ok := epoch(h.Get("X-RateLimit-Reset")); ok {
			return until(t, at)
		}
	}
	if t, ok := epoch(h.Get("RateLimit-Reset")); ok {
		return until(t, at)
	}
	return abi.DefaultRetryAfter
}

func clampSeconds(n int64) int {
	if n < abi.MinRetryAfter {
		return abi.MinRetryAfter
	}
	return abi.ClampRetryAfter(n)
}

// until returns the whole seconds from at to t, rounded up and clamped.
func until(t, at time.Time) int {
	d := t.Sub(at)
	return clampSeconds(int64((d + time.Second - 1) / time.Second))
}

func epoch(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// parseHTTPDate accepts the three HTTP-date forms (RFC 9110 section
// 5.6.7): IMF-fixdate and the obsolete RFC 850 and asctime forms.
func parseHTTPDate(s string) (time.Time, bool) {
	for _, layout := range []string{
		"Mon, 02 Jan 2006 15:04:05 GMT",
		"Monday, 02-Jan-06 15:04:05 GMT",
		"Mon Jan _2 15:04:05 2006",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// mentionsRateLimit reports whether body is a JSON object whose "message"
// mentions a rate limit, as GitHub's answers to both limits do.
func mentionsRateLimit(body []byte) bool {
	j := NewJSON(body)
	if j.Kind() != '{' {
		return false
	}
	var msg string
	j.Object(func(key []byte) {
		if string(key) == "message" && j.Kind() == '"' {
			msg = j.String()
		}
	})
	return strings.Contains(strings.ToLower(msg), "rate limit")
}
