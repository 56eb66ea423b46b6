//go:build !wasip1

package plugin

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

// seen is a request as a loopback server received it.
type seen struct {
	Method, Path, Query, Body, Authorization, ContentType string
}

// loopback starts h on 127.0.0.1 and makes the package's native transport
// (hostForTest) send the plugin's requests to it with net/http, encoded
// and decoded through the ABI as the host does: the SDK's code runs
// against a real HTTP server. It returns the server's URL and the
// requests it received.
func loopback(t *testing.T, h http.HandlerFunc) (string, func() []seen) {
	t.Helper()
	var (
		mu  sync.Mutex
		log []seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		log = append(log, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Get("Authorization"), r.Header.Get("Content-Type")})
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	hostForTest = func(raw []byte) ([]byte, error) {
		var req abi.HTTPRequest
		if err := req.UnmarshalABI(raw); err != nil {
			t.Fatalf("the plugin's request does not decode: %v", err)
		}
		hr, err := http.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
		if err != nil {
			return (&abi.HTTPResponse{Code: abi.CodeInvalidRequest, Message: err.Error()}).AppendABI(nil), nil
		}
		for _, f := range req.Headers {
			hr.Header.Add(f.Name, f.Value)
		}
		resp, err := srv.Client().Do(hr)
		if err != nil {
			return (&abi.HTTPResponse{Code: abi.CodeUnavailable, Message: err.Error()}).AppendABI(nil), nil
		}
		defer resp.Body.Close()
		out := abi.HTTPResponse{Status: resp.StatusCode}
		out.Body, _ = io.ReadAll(resp.Body)
		for k, vs := range resp.Header { // net/http's names are canonical, as the host's
			for _, v := range vs {
				out.Headers = append(out.Headers, abi.Header{Name: k, Value: v})
			}
		}
		return out.AppendABI(nil), nil
	}
	t.Cleanup(func() { hostForTest = nil })
	return srv.URL, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), log...)
	}
}
