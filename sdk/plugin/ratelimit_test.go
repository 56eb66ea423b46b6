//go:build !wasip1

package plugin

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/vintner/arbor/sdk/abi"
)

// TestRateLimit covers every provider signal RateLimit reads, through
// CheckResponse (the API path) and ParseTokenResponse (the token
// endpoint). The clock is fixed, so the waits are exact.
func TestRateLimit(t *testing.T) {
	at := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	defer func(old func() time.Time) { now = old }(now)
	now = func() time.Time { return at.Add(300 * time.Millisecond) } // a fraction of a second rounds up
	epochIn := func(d time.Duration) string { return strconv.FormatInt(at.Add(d).Unix(), 10) }

	const secondary = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
	const primary = `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`
	for _, tc := range []struct {
		name    string
		status  int
		headers map[string]string
		body    string
		limited bool
		wait    int
	}{
		// GitHub primary: remaining 0, wait until x-ratelimit-reset.
		{"github primary 403", 403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": epochIn(20 * time.Minute)}, primary, true, 20 * 60},
		{"github primary 429", 429, map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset": epochIn(90 * time.Second)}, primary, true, 90},
		{"github primary reset already past", 403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": epochIn(-time.Minute)}, primary, true, 1},
		{"github primary without reset", 403, map[string]string{"X-RateLimit-Remaining": "0"}, "", true, abi.DefaultRetryAfter},
		// GitHub secondary: remaining not 0.
		{"github secondary 403 retry-after", 403, map[string]string{"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": epochIn(time.Hour), "Retry-After": "30"}, secondary, true, 30},
		{"github secondary 429 retry-after", 429, map[string]string{"X-RateLimit-Remaining": "4999", "Retry-After": "45"}, secondary, true, 45},
		// Only the message: GitHub says wait at least a minute; the
		// primary window's reset does not apply while remaining is not 0.
		{"github secondary 403 message only", 403, map[string]string{"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": epochIn(time.Hour)}, secondary, true, abi.DefaultRetryAfter},
		{"github secondary 403 message, no headers", 403, nil, `{"message":"API RATE LIMIT exceeded"}`, true, abi.DefaultRetryAfter},
		{"github secondary retry-after and remaining 0", 403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": epochIn(time.Hour), "Retry-After": "7"}, secondary, true, 7},
		// A plain 403 is a permission problem, not a rate limit.
		{"github 403 missing scope", 403, map[string]string{"X-RateLimit-Remaining": "4998", "X-RateLimit-Reset": epochIn(time.Hour)},
			`{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/users/emails"}`, false, 0},
		{"403 html", 403, nil, "<html>rate limit</html>", false, 0},
		{"403 message not a string", 403, nil, `{"message":{"text":"rate limit"}}`, false, 0},
		// GitLab: 429 with RateLimit-Reset (epoch) and usually Retry-After.
		{"gitlab 429 ratelimit-reset", 429, map[string]string{"RateLimit-Limit": "600", "RateLimit-Remaining": "0", "RateLimit-Reset": epochIn(40 * time.Second)},
			`{"message":"Retry later"}`, true, 40},
		{"gitlab 429 retry-after wins", 429, map[string]string{"RateLimit-Reset": epochIn(40 * time.Second), "Retry-After": "12"}, "Retry later\n", true, 12},
		// Bitbucket: a bare 429 (no header documented).
		{"bitbucket 429 bare", 429, nil, `{"type":"error","error":{"message":"Rate limit for this resource has been exceeded"}}`, true, abi.DefaultRetryAfter},
		// Retry-After forms (RFC 9110 section 10.2.3).
		{"retry-after http-date", 429, map[string]string{"Retry-After": at.Add(2 * time.Minute).Format("Mon, 02 Jan 2006 15:04:05 GMT")}, "", true, 120},
		{"retry-after rfc850 date", 429, map[string]string{"Retry-After": at.Add(10 * time.Second).Format("Monday, 02-Jan-06 15:04:05 GMT")}, "", true, 10},
		{"retry-after asctime date", 429, map[string]string{"Retry-After": at.Add(5 * time.Second).Format("Mon Jan _2 15:04:05 2006")}, "", true, 5},
		{"retry-after date past", 429, map[string]string{"Retry-After": at.Add(-time.Hour).Format("Mon, 02 Jan 2006 15:04:05 GMT")}, "", true, 1},
		{"retry-after zero", 429, map[string]string{"Retry-After": "0"}, "", true, 1},
		{"retry-after huge", 429, map[string]string{"Retry-After": "999999"}, "", true, abi.MaxRetryAfter},
		{"retry-after garbage", 429, map[string]string{"Retry-After": "soon"}, "", true, abi.DefaultRetryAfter},
		// Not rate limits.
		{"200", 200, map[string]string{"X-RateLimit-Remaining": "0"}, "", false, 0},
		{"503 with retry-after", 503, map[string]string{"Retry-After": "1"}, "", false, 0},
		{"404", 404, nil, `{"message":"Not Found"}`, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := resp(tc.status, "application/json", tc.body)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			wait, limited := RateLimit(r)
			if limited != tc.limited || wait != tc.wait {
				t.Fatalf("RateLimit = %d, %v; want %d, %v", wait, limited, tc.wait, tc.limited)
			}
			err := CheckResponse("GET", "https://api.example/user", r)
			var e *Error
			switch {
			case tc.status == 200:
				if err != nil {
					t.Fatalf("CheckResponse(200) = %v", err)
				}
			case !errors.As(err, &e):
				t.Fatalf("CheckResponse = %#v", err)
			case tc.limited && (e.Code != abi.CodeRateLimited || !e.Retryable || e.RetryAfter != tc.wait || e.Status != tc.status):
				t.Fatalf("CheckResponse = %+v, want rate_limited after %d", e, tc.wait)
			case !tc.limited && (e.Code != abi.CodeProviderError || e.RetryAfter != 0):
				t.Fatalf("CheckResponse = %+v, want provider_error", e)
			}
			// The token endpoint: a rate limit wins over the OAuth error
			// body (the fakes answer a 429 with temporarily_unavailable).
			if tc.status == 200 {
				return
			}
			r.Body = []byte(`{"error":"temporarily_unavailable","error_description":"slow down"}`)
			if tc.body != "" && tc.status == 403 && tc.headers["Retry-After"] == "" && tc.headers["X-RateLimit-Remaining"] != "0" {
				return // the message was the signal; the OAuth body has none
			}
			_, err = ParseTokenResponse(r)
			gotLimited := errors.As(err, &e) && e.Code == abi.CodeRateLimited
			if gotLimited != tc.limited || (tc.limited && e.RetryAfter != tc.wait) {
				t.Fatalf("ParseTokenResponse = %+v, want limited %v after %d", err, tc.limited, tc.wait)
			}
		})
	}
}

func TestErrRateLimitedAfterEncodes(t *testing.T) {
	var res abi.Result
	if err := abi.Unmarshal(errorResult(nil, ErrRateLimitedAfter("slow", 42)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Code != abi.CodeRateLimited || !res.Retryable || res.RetryAfter != 42 {
		t.Fatalf("%+v", res)
	}
	if err := abi.Unmarshal(errorResult(nil, ErrRateLimited("slow")), &res); err != nil || res.RetryAfter != 0 {
		t.Fatalf("%+v %v", res, err)
	}
}
