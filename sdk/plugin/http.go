package plugin

import (
	"context"
	"strconv"
	"strings"

	"github.com/vintner/arbor/sdk/abi"
)

// Header is a set of HTTP header fields keyed by canonical name, as in
// net/http (which plugins must not import).
type Header map[string][]string

// Get returns the first value of key.
func (h Header) Get(key string) string {
	if v := h[CanonicalHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key.
func (h Header) Values(key string) []string { return h[CanonicalHeaderKey(key)] }

// Set replaces key's values with value.
func (h Header) Set(key, value string) { h[CanonicalHeaderKey(key)] = []string{value} }

// Add appends value to key's values.
func (h Header) Add(key, value string) {
	k := CanonicalHeaderKey(key)
	h[k] = append(h[k], value)
}

// Del removes key.
func (h Header) Del(key string) { delete(h, CanonicalHeaderKey(key)) }

// CanonicalHeaderKey returns key in canonical MIME form ("content-type" →
// "Content-Type").
func CanonicalHeaderKey(key string) string {
	upper := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		if (upper && 'a' <= c && c <= 'z') || (!upper && 'A' <= c && c <= 'Z') {
			b := []byte(key)
			for j := i; j < len(b); j++ {
				c := b[j]
				if upper && 'a' <= c && c <= 'z' {
					b[j] = c - ('a' - 'A')
				} else if !upper && 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
				upper = c == '-'
			}
			return string(b)
		}
		upper = c == '-'
	}
	return key
}

// Request is an outgoing HTTP request.
type Request struct {
	Method string
	URL    string
	Header Header
	Body   []byte
}

// NewRequest returns a request with an empty header.
func NewRequest(method, url string, body []byte) *Request {
	return &Request{Method: method, URL: url, Header: Header{}, Body: body}
}

// Response is an HTTP response. The host has already read the body, within
// the response cap, and followed allowed redirects.
//
// Header's keys are the names in canonical form, as net/http keeps them
// ("x-next-page" arrives as "X-Next-Page", Gitee's "total_page" as
// "Total_page"): read a field with Header.Get, which canonicalizes the
// name it is given, rather than indexing the map.
type Response struct {
	StatusCode int
	Header     Header
	Body       []byte
}

// OK reports whether the status is 2xx.
func (r *Response) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// Do sends req through the host. It returns an *Error when the host refused
// or failed the request (host_not_allowed, timeout, response_too_large,
// unavailable); an HTTP error status is not an error: check StatusCode or
// use CheckResponse.
//
// The context is accepted for symmetry with net/http; the host enforces the
// call's deadline whatever it says.
func Do(ctx context.Context, req *Request) (*Response, error) {
	_ = ctx
	hr := abi.HTTPRequest{Method: req.Method, URL: req.URL, Body: req.Body}
	if hr.Method == "" {
		hr.Method = "GET"
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			hr.Headers = append(hr.Headers, abi.Header{Name: k, Value: v})
		}
	}
	raw, err := roundTrip(hr.AppendABI(scratch[:0]))
	if err != nil {
		return nil, err
	}
	var resp abi.HTTPResponse
	if err := resp.UnmarshalABI(raw); err != nil {
		return nil, &Error{Code: abi.CodeInternal, Message: "the host's HTTP response could not be decoded: " + err.Error()}
	}
	if resp.Code != "" {
		return nil, &Error{Code: resp.Code, Message: resp.Message, Retryable: resp.Retryable}
	}
	h := make(Header, len(resp.Headers))
	for _, f := range resp.Headers {
		h[f.Name] = append(h[f.Name], f.Value) // the host sends canonical names
	}
	return &Response{StatusCode: resp.Status, Header: h, Body: resp.Body}, nil
}

// scratch is reused to encode requests: an instance runs one call at a time.
var scratch = make([]byte, 0, 4096)

// Get sends a GET request with the given header (which may be nil).
func Get(ctx context.Context, url string, h Header) (*Response, error) {
	req := NewRequest("GET", url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	return Do(ctx, req)
}

// PostForm sends form as application/x-www-form-urlencoded.
func PostForm(ctx context.Context, url string, form Values, h Header) (*Response, error) {
	req := NewRequest("POST", url, []byte(form.Encode()))
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return Do(ctx, req)
}

// Bearer returns a header carrying an access token.
func Bearer(token string) Header {
	return Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}}
}

// CheckResponse turns an API error status into an *Error: 401 is
// invalid_token; a rate limit by RateLimit's rules (429, or a GitHub 403
// that says so) is rate_limited with RetryAfter; anything else outside 2xx
// is provider_error (retryable for 5xx). It returns nil for 2xx. The
// message names the method, path and status, never the query or body.
func CheckResponse(method, rawURL string, r *Response) error {
	if r.OK() {
		return nil
	}
	path, _, _ := strings.Cut(rawURL, "?")
	if _, rest, ok := strings.Cut(path, "://"); ok {
		path = "/"
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			path = rest[i:]
		}
	}
	where := method + " " + path
	msg := where + ": status " + strconv.Itoa(r.StatusCode)
	if r.StatusCode == 401 {
		return &Error{Code: abi.CodeInvalidToken, Message: msg, Status: 401}
	}
	if wait, limited := RateLimit(r); limited {
		return &Error{Code: abi.CodeRateLimited, Message: msg + ": rate limited, retry after " + strconv.Itoa(wait) + " s",
			Status: r.StatusCode, Retryable: true, RetryAfter: wait}
	}
	return ErrProvider(r.StatusCode, msg)
}

// NextLink returns the URL of the Link header's rel="next" target, or ""
// (RFC 8288; GitHub and Gitea paginate this way).
func NextLink(h Header) string {
	for _, v := range h.Values("Link") {
		for part := range strings.SplitSeq(v, ",") {
			segs := strings.Split(part, ";")
			if len(segs) < 2 {
				continue
			}
			target := strings.TrimSpace(segs[0])
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range segs[1:] {
				p = strings.TrimSpace(p)
				if rel, ok := strings.CutPrefix(p, "rel="); ok {
					for r := range strings.FieldsSeq(strings.Trim(rel, `"`)) {
						if r == "next" {
							return target[1 : len(target)-1]
						}
					}
				}
			}
		}
	}
	return ""
}
