package authz_test

// The Gate's behaviour tests run a whole Arbor (app/apptest): real Fiber
// on loopback, bbolt, the built-in plugins and the fake providers, so that
// what they check is what the upstream and the browser really see. They
// moved here from gateway/signin with the guard and the director.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/config"
	"github.com/vintner/arbor/gateway/authz"
	"github.com/vintner/arbor/gateway/authz/access"
)

type envOptions struct {
	defaultClass access.Class // default access.Session
	rules        []access.Rule
	headers      authz.Headers
}

// env is one Arbor with /api/tendril/ as its worker routes and no rate
// limits.
type env struct {
	*apptest.Harness
	addr     string
	cookie   string
	upstream *apptest.Recorder
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.defaultClass == 0 {
		o.defaultClass = access.Session
	}
	h := apptest.New(t,
		apptest.Routes(o.defaultClass, o.rules...),
		apptest.Config(func(c *config.Config) {
			c.Limits.Enabled = false
			c.Workers.Paths = []string{"/api/tendril/"}
			for _, h := range []struct {
				v   string
				key *string
			}{{o.headers.UserID, &c.Identity.UserIDHeader}, {o.headers.Email, &c.Identity.EmailHeader},
				{o.headers.Login, &c.Identity.LoginHeader}, {o.headers.Assertion, &c.Identity.AssertionHeader}} {
				if h.v != "" {
					*h.key = h.v
				}
			}
		}),
	)
	return &env{Harness: h, addr: h.Addr, cookie: h.Cookie, upstream: h.Upstream}
}

func (e *env) browser() *apptest.Browser { return e.Browser() }

func errorCode(body string) string { return apptest.ErrorCode(body) }

func whoamiUser(t *testing.T, b *apptest.Browser) (id, login, email string) {
	t.Helper()
	return apptest.Whoami(t, b)
}

func verifyAssertion(t *testing.T, b *apptest.Browser, tok string) jwt.MapClaims {
	t.Helper()
	return apptest.VerifyAssertion(t, b, tok)
}

// assertServes checks that Arbor still answers after a bad input.
func assertServes(t *testing.T, e *env) {
	t.Helper()
	if res := e.browser().Get("/healthz"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz after the bad input = %d %s", res.StatusCode, res.Body)
	}
}

// normHeader folds a header name as the upstream frameworks do: case
// ignored, '_' read as '-'.
func normHeader(k string) string {
	return strings.ReplaceAll(strings.ToLower(k), "_", "-")
}

// headerValues returns every value of h under any spelling of name.
func headerValues(h http.Header, name string) []string {
	var out []string
	for k, v := range h {
		if normHeader(k) == normHeader(name) {
			out = append(out, v...)
		}
	}
	return out
}

// arborHeaders returns the X-Arbor-* headers of h (any spelling).
func arborHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(normHeader(k), "x-arbor-") {
			out[k] = v
		}
	}
	return out
}

// rawGet sends "GET target" exactly as written, which net/http would
// escape or refuse, and returns the status and body.
func rawGet(t *testing.T, e *env, target string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, e.addr); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %q: reading the response: %v", target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}
