package fakeprovider

import (
	"net/http"
	"strconv"
	"time"
)

// RateLimitKind is which of a provider's rate limits RateLimitNext
// reproduces. Only GitHub distinguishes them; the other flavors answer
// their one documented rate-limit response whatever the kind.
type RateLimitKind int

const (
	// RateLimitPrimary: GitHub's primary (hourly) limit exhausted: 403
	// with x-ratelimit-remaining: 0, x-ratelimit-reset and "API rate limit
	// exceeded for user ID …".
	RateLimitPrimary RateLimitKind = iota
	// RateLimitPrimary429 is RateLimitPrimary answered with 429, which
	// GitHub's documentation also allows.
	RateLimitPrimary429
	// RateLimitSecondary: a GitHub secondary limit: 403 with "You have
	// exceeded a secondary rate limit…", retry-after: 60 and an
	// x-ratelimit-remaining that is NOT 0.
	RateLimitSecondary
	// RateLimitSecondary429 is RateLimitSecondary answered with 429.
	RateLimitSecondary429
)

// RateLimitNext makes the next n calls to ep answer as the provider does
// when a rate limit is exceeded, without looking at the request (the call
// is recorded as Injected, Error "rate_limited" or
// "secondary_rate_limited"). n <= 0 cancels it (and any FailNext or
// HangNext on ep).
//
//   - GitHub: see RateLimitKind
//     (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api,
//     https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api).
//   - GitLab: 429 "Retry later" with Retry-After: 60 and RateLimit-Name,
//     -Limit, -Observed, -Remaining (0), -Reset and -ResetTime
//     (https://docs.gitlab.com/security/rate_limits/,
//     https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/).
//   - Bitbucket: 429 "Rate limit for this resource has been exceeded."
//     without Retry-After: the documentation promises none
//     (https://support.atlassian.com/bitbucket-cloud/docs/api-request-limits/).
//   - Others: 429 with Retry-After: 60.
func (p *Provider) RateLimitNext(ep Endpoint, n int, kind RateLimitKind) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[ep] = &fault{n: n, rateLimit: true, kind: kind}
}

// githubRateLimit is the primary limit of a user-to-server token.
const githubRateLimit = 5000

// rateLimitHeaders sets GitHub's x-ratelimit-* headers and counts the
// call; exhausted reports the limit as used up.
func (p *Provider) rateLimitHeaders(h http.Header, exhausted bool) {
	p.mu.Lock()
	p.rateUsed++
	used, reset := p.rateUsed, p.rateReset
	p.mu.Unlock()
	// Never 0 unless exhausted: a 0 is how clients recognise the primary
	// limit.
	remaining := max(githubRateLimit-used, 1)
	if exhausted {
		used, remaining = githubRateLimit, 0
	}
	h.Set("X-Ratelimit-Limit", strconv.Itoa(githubRateLimit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-Ratelimit-Used", strconv.Itoa(used))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-Ratelimit-Resource", "core")
}

// rateLimited answers an injected rate limit in the flavor's format.
func (p *Provider) rateLimited(w http.ResponseWriter, r *http.Request, kind RateLimitKind, c *Call) {
	c.Error = "rate_limited"
	h := w.Header()
	switch p.cfg.Flavor {
	case FlavorGitHub:
		status := http.StatusForbidden
		if kind == RateLimitPrimary429 || kind == RateLimitSecondary429 {
			status = http.StatusTooManyRequests
		}
		if kind == RateLimitSecondary || kind == RateLimitSecondary429 {
			c.Error = "secondary_rate_limited"
			p.rateLimitHeaders(h, false)
			h.Set("Retry-After", "60")
			writeJSON(w, status, fields{
				{"message", "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " +
					"If you reach out to GitHub Support for help, please include the request ID 0000:FAKE:0000000:0000000:00000000."},
				{"documentation_url", "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"},
				{"status", strconv.Itoa(status)},
			})
			return
		}
		p.rateLimitHeaders(h, true)
		who := "127.0.0.1"
		if tok, ok := p.bearer(r); ok {
			p.mu.Lock()
			if t := p.access[tok]; t != nil {
				who = "user ID " + strconv.FormatInt(t.user.ID, 10)
			}
			p.mu.Unlock()
		}
		writeJSON(w, status, fields{
			{"message", "API rate limit exceeded for " + who + ". If you reach out to GitHub Support for help, " +
				"please include the request ID 0000:FAKE:0000000:0000000:00000000."},
			{"documentation_url", "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
			{"status", strconv.Itoa(status)},
		})
	case FlavorGitLab:
		reset := p.cfg.Now().Add(time.Minute).Truncate(time.Second)
		h.Set("Retry-After", "60")
		h.Set("RateLimit-Name", "throttle_authenticated_api")
		h.Set("RateLimit-Limit", "2000")
		h.Set("RateLimit-Observed", "2001")
		h.Set("RateLimit-Remaining", "0")
		h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte("Retry later\n"))
	case FlavorBitbucket:
		writeJSON(w, http.StatusTooManyRequests, fields{{"type", "error"},
			{"error", fields{{"message", "Rate limit for this resource has been exceeded."}}}})
	default:
		h.Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, fields{{"error", "rate_limited"},
			{"error_description", "Too many requests; retry after 60 seconds."}})
	}
}
