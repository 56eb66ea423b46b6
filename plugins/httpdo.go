package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/vintner/arbor/plugins/internal/netguard"
	"github.com/vintner/arbor/sdk/abi"
)

// Per-call limits of the host functions.
const (
	maxHTTPPerCall  = 32      // http_do calls in one operation
	maxRequestBytes = 1 << 20 // one encoded HTTP request from a plugin
	maxLogLines     = 50      // log lines in one operation
	maxLogBytes     = 2 << 10 // one log line
	maxRedirects    = 5
)

// callKey carries the *callState of the operation running on an instance,
// so that host functions know which plugin and call they serve.
type callKey struct{}

// callState is what the host functions share during one operation.
type callState struct {
	v       *version
	op      abi.Op
	init    bool     // the module's _initialize is running, not an operation
	secrets []string // values to remove from logs and messages
	pending []byte   // a response too large for the plugin's buffer
	tainted string   // why the instance must be replaced after this call
	logs    int
	https   int
}

func (st *callState) taint(reason string) {
	if st.tainted == "" {
		st.tainted = reason
	}
}

// minSecretLen: shorter values are not redacted (real codes, tokens and
// secrets are far longer, and replacing every "ok" would garble messages).
const minSecretLen = 8

// redact removes the call's secrets from s.
func (st *callState) redact(s string) string {
	if st == nil {
		return s
	}
	for _, sec := range st.secrets {
		if len(sec) >= minSecretLen && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(callKey{}).(*callState)
	return st
}

// hostHTTPDo implements http_do(req_ptr, req_len, buf_ptr, buf_cap) i32.
func hostHTTPDo(ctx context.Context, mod api.Module, stack []uint64) {
	reqPtr, reqLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	bufPtr, bufCap := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	st := stateOf(ctx)
	var resp *abi.HTTPResponse
	switch {
	case st == nil || st.init:
		resp = &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: "http_do may only be called during an operation, not while the module initialises"}
	case reqLen > maxRequestBytes:
		resp = &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: fmt.Sprintf("the request is larger than %d KiB", maxRequestBytes>>10)}
	default:
		raw, ok := mod.Memory().Read(reqPtr, reqLen)
		if !ok {
			panic(&abiViolation{"http_do was given a request outside the plugin's memory"})
		}
		var req abi.HTTPRequest
		if err := req.UnmarshalABI(raw); err != nil {
			resp = &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: err.Error()}
		} else {
			resp = st.v.do(ctx, st, &req)
		}
	}
	out := resp.AppendABI(nil)
	if uint64(len(out)) <= uint64(bufCap) {
		if !mod.Memory().Write(bufPtr, out) {
			panic(&abiViolation{"http_do was given a response buffer outside the plugin's memory"})
		}
		if st != nil {
			st.pending = nil
		}
	} else if st != nil {
		st.pending = out
	}
	stack[0] = api.EncodeU32(uint32(len(out)))
}

// hostHTTPTake implements http_take(buf_ptr, buf_cap) i32.
func hostHTTPTake(ctx context.Context, mod api.Module, stack []uint64) {
	bufPtr, bufCap := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	st := stateOf(ctx)
	if st == nil || st.pending == nil {
		stack[0] = api.EncodeI32(-1)
		return
	}
	n := len(st.pending)
	if uint64(n) <= uint64(bufCap) {
		if !mod.Memory().Write(bufPtr, st.pending) {
			panic(&abiViolation{"http_take was given a buffer outside the plugin's memory"})
		}
		st.pending = nil
	}
	stack[0] = api.EncodeU32(uint32(n))
}

// hostLog implements log(level, ptr, len).
func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := api.DecodeI32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	st := stateOf(ctx)
	if st == nil {
		return
	}
	st.logs++
	if st.logs > maxLogLines {
		if st.logs == maxLogLines+1 {
			st.v.log.Warn("plugin: further log lines of this call dropped", "op", st.op.String(), "limit", maxLogLines)
		}
		return
	}
	truncated := n > maxLogBytes
	n = min(n, maxLogBytes)
	raw, ok := mod.Memory().Read(ptr, n)
	if !ok {
		panic(&abiViolation{"log was given a message outside the plugin's memory"})
	}
	msg := st.redact(string(raw))
	if truncated {
		msg += "…"
	}
	attrs := []any{"source", "plugin"}
	if !st.init {
		attrs = append(attrs, "op", st.op.String())
	}
	st.v.log.Log(context.Background(), slog.Level(level), msg, attrs...)
}

// do performs a plugin's HTTP request under the sandbox rules.
func (v *version) do(ctx context.Context, st *callState, r *abi.HTTPRequest) *abi.HTTPResponse {
	st.https++
	if st.https > maxHTTPPerCall {
		st.taint("too many HTTP requests in one call")
		return &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: fmt.Sprintf("more than %d HTTP requests in one call", maxHTTPPerCall)}
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: "the URL must be an absolute http or https URL"}
	}
	if u.User != nil {
		return &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: "URLs with user information are not allowed; send credentials in a header"}
	}
	if reason := v.checkDestination(u); reason != "" {
		st.taint(reason)
		return &abi.HTTPResponse{Code: abi.CodeHostNotAllowed, Message: reason}
	}
	switch r.Method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE":
	default:
		return &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: fmt.Sprintf("method %q is not allowed", r.Method)}
	}
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return &abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: "the request is invalid: " + err.Error()}
	}
	for _, h := range r.Headers {
		switch http.CanonicalHeaderKey(h.Name) {
		case "Host", "Content-Length", "Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade",
			"Keep-Alive", "Proxy-Authorization", "Proxy-Connection":
			continue // the transport owns these
		}
		req.Header.Add(h.Name, h.Value)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Arbor-Plugin/"+v.man.Name)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return v.transportError(ctx, st, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, v.limits.respBytes+1))
	if err != nil {
		return v.transportError(ctx, st, u, err)
	}
	if int64(len(b)) > v.limits.respBytes {
		st.taint("response over the cap")
		return &abi.HTTPResponse{Code: abi.CodeResponseTooLarge, Message: fmt.Sprintf(
			"the response from %s is larger than the plugin's cap of %d bytes (limits.response_bytes, clamped by the operator's max_response_bytes)",
			where(resp.Request.URL), v.limits.respBytes)}
	}
	out := &abi.HTTPResponse{Status: resp.StatusCode, Body: b, Headers: make([]abi.Header, 0, len(resp.Header))}
	for k, vals := range resp.Header {
		for _, val := range vals {
			out.Headers = append(out.Headers, abi.Header{Name: k, Value: val})
		}
	}
	return out
}

// checkDestination returns why u may not be requested, or "".
func (v *version) checkDestination(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	hp := net.JoinHostPort(host, port)
	if !v.allow.Allows(host, port) {
		return fmt.Sprintf("%s is not an allowed host of plugin %q: the plugin may reach only its endpoints, "+
			"the manifest's allowed_hosts and the operator's allowed hosts", hp, v.man.Name)
	}
	if u.Scheme == "http" && !v.private.Allows(host, port) {
		return fmt.Sprintf("plain http to %s is not allowed: use https (only hosts the operator lists in allow_private_hosts may use http)", hp)
	}
	return ""
}

// redirectError is returned by checkRedirect.
type redirectError struct {
	msg     string
	refused bool
}

func (e *redirectError) Error() string { return e.msg }

func (v *version) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return &redirectError{msg: fmt.Sprintf("stopped after %d redirects", maxRedirects)}
	}
	if reason := v.checkDestination(req.URL); reason != "" {
		return &redirectError{refused: true, msg: fmt.Sprintf("the redirect from %s to %s was refused: %s",
			where(via[len(via)-1].URL), where(req.URL), reason)}
	}
	return nil
}

func (v *version) transportError(ctx context.Context, st *callState, u *url.URL, err error) *abi.HTTPResponse {
	var re *redirectError
	var refused *netguard.RefusedError
	switch {
	case errors.As(err, &refused):
		st.taint(refused.Error())
		return &abi.HTTPResponse{Code: abi.CodeHostNotAllowed, Message: refused.Error() +
			" (if this is an internal provider, the operator can list the host in the plugin's allow_private_hosts)"}
	case errors.As(err, &re):
		if re.refused {
			st.taint(re.msg)
			return &abi.HTTPResponse{Code: abi.CodeHostNotAllowed, Message: re.msg}
		}
		return &abi.HTTPResponse{Code: abi.CodeProviderError, Message: fmt.Sprintf("the request to %s: %s", where(u), re.msg)}
	case ctx.Err() != nil:
		st.taint("HTTP request outlived the call's deadline")
		return &abi.HTTPResponse{Code: abi.CodeTimeout, Retryable: true, Message: fmt.Sprintf(
			"the request to %s did not finish within the call's deadline of %s", where(u), v.limits.timeout)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error repeats the URL, query included
	}
	return &abi.HTTPResponse{Code: abi.CodeUnavailable, Retryable: true, Message: fmt.Sprintf("the request to %s failed: %v", where(u), err)}
}

// where names a URL without its query, which may carry tokens.
func where(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}
