package session

import (
	"bufio"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestCookieMatchesFasthttp holds cookie to fasthttp's choice
// (RequestHeader.Cookie, what fiber's Ctx.Cookies returns): the same value
// for hand-picked headers and for random ones built from the characters
// that matter to the parse.
func TestCookieMatchesFasthttp(t *testing.T) {
	const name = "arbor_session"
	cases := [][]string{
		{""},
		{"arbor_session=abc"},
		{"arbor_session=abc; other=1"},
		{"other=1; arbor_session=abc"},
		{"other=1;arbor_session=abc"},
		{"other=1;  arbor_session=abc"},
		{" arbor_session = abc "},
		{"\tarbor_session\t=\tabc\t"},
		{`arbor_session="abc"`},
		{`arbor_session=" abc "`},
		{`arbor_session="abc`},
		{`arbor_session=a"bc; arbor_session=second`},
		{`arbor_session=a\bc; arbor_session=second`},
		{"arbor_session=first; arbor_session=second"},
		{"arbor_session=; arbor_session=second"},
		{"arbor_session"},
		{"arbor_session; arbor_session=x"},
		{"=arbor_session; arbor_session=y"},
		{"Arbor_session=upper; arbor_session=lower"},
		{"arbor_session=a=b=c"},
		{"arbor_sessionx=1; xarbor_session=2"},
		{"a=1", "arbor_session=from-the-second-header"},
		{"arbor_session=first-header", "arbor_session=second-header"},
		{`arbor_session=a"b`, "arbor_session=second-header"},
		{";;; ;arbor_session=z;;"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	parts := []string{"arbor_session", "x", "=", ";", " ", "\t", `"`, `\`, "v", "arbor_session="}
	for range 5000 {
		var hs []string
		for range 1 + rng.IntN(2) {
			var b strings.Builder
			for range rng.IntN(12) {
				b.WriteString(parts[rng.IntN(len(parts))])
			}
			hs = append(hs, b.String())
		}
		cases = append(cases, hs)
	}
	for _, hs := range cases {
		var raw strings.Builder
		raw.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
		for _, h := range hs {
			raw.WriteString("Cookie: " + h + "\r\n")
		}
		raw.WriteString("\r\n")
		var ours, theirs fasthttp.RequestHeader
		if err := ours.Read(bufioReader(raw.String())); err != nil {
			continue // not a header fasthttp reads: never reaches the session
		}
		if err := theirs.Read(bufioReader(raw.String())); err != nil {
			t.Fatal(err)
		}
		got := cookie(&ours, name)
		want := string(theirs.Cookie(name))
		if got != want {
			t.Errorf("Cookie headers %q: got %q, fasthttp %q", hs, got, want)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
