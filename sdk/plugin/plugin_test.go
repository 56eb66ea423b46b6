//go:build !wasip1

package plugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/vintner/arbor/sdk/abi"
)

func TestJSONReader(t *testing.T) {
	doc := `  [ {"id": 1, "full_name":"a/b", "skip": {"x":[1,2,{"y":null}], "z":"q\"}"}, "private": true,
	          "description": "tab\there \u00e9 \ud83d\ude00 \/ \\", "n": null, "big": 1e3, "sid": "42"},
	        {}, null ] `
	type row struct {
		ID, Name, Desc, Big, SID string
		Private, Null            bool
	}
	var rows []row
	j := NewJSON([]byte(doc))
	j.Array(func() {
		if j.Null() {
			rows = append(rows, row{Null: true})
			return
		}
		var r row
		j.Object(func(key []byte) {
			switch string(key) {
			case "id":
				r.ID = j.Number()
			case "full_name":
				r.Name = j.String()
			case "private":
				r.Private = j.Bool()
			case "description":
				r.Desc = j.String()
			case "big":
				r.Big = j.Number()
			case "sid":
				r.SID = itoa(j.Int())
			case "n":
				r.Null = j.Null()
			}
		})
		rows = append(rows, r)
	})
	if err := j.Err(); err != nil {
		t.Fatal(err)
	}
	want := []row{
		{ID: "1", Name: "a/b", Private: true, Desc: "tab\there é 😀 / \\", Big: "1e3", SID: "42", Null: true},
		{}, {Null: true},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got  %+v\nwant %+v", rows, want)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestJSONReaderErrors(t *testing.T) {
	for _, doc := range []string{
		``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1 2]`, `["abc`, "[\"a\x01b\"]", `[tru]`, `{"a":1} x`,
		`[` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 201), `{"a":"\"}`,
	} {
		j := NewJSON([]byte(doc))
		j.Skip()
		if err := j.Err(); err == nil {
			t.Errorf("%q: no error", doc)
		} else if !strings.Contains(err.Error(), "invalid JSON at offset") {
			t.Errorf("%q: %v", doc, err)
		}
	}
	j := NewJSON([]byte(`{"a":"x"}`))
	j.Array(func() {})
	if j.Err() == nil {
		t.Error("an object read as an array")
	}
}

// TestJSONStringsAgainstEncodingJSON checks the eight-bytes-at-a-time scan
// at every alignment, with escapes and multi-byte characters.
func TestJSONStringsAgainstEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "\"", "\\", "\n", "\t", "é", "😀", "\u2028", "<", "/", "\x7f", " "}
	for n := range 2000 {
		var b strings.Builder
		for range n % 40 {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		want := b.String()
		enc, _ := json.Marshal(map[string]string{"k": want})
		var got string
		j := NewJSON(enc)
		j.Object(func(key []byte) {
			if string(key) == "k" {
				got = j.String()
			}
		})
		if err := j.Err(); err != nil || got != want {
			t.Fatalf("%q: got %q, %v (encoded %s)", want, got, err, enc)
		}
	}
}

func FuzzJSONSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x",null,true,{"b":"\u00e9"}]}`, `"abc\\"`, `[]`, `1e5`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		j := NewJSON(b)
		j.Skip()
		err := j.Err()
		if json.Valid(b) && err != nil {
			t.Errorf("%q is valid JSON but: %v", b, err)
		}
	})
}

func resp(status int, ct, body string) *Response {
	h := Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return &Response{StatusCode: status, Header: h, Body: []byte(body)}
}

func TestParseTokenResponse(t *testing.T) {
	for name, tc := range map[string]struct {
		r         *Response
		tok       *Token
		code      abi.Code
		retryable bool
	}{
		"json": {r: resp(200, "application/json; charset=utf-8",
			`{"access_token":"at","refresh_token":"rt","token_type":"bearer","expires_in":3600,"refresh_token_expires_in":"15897600","scope":"read:user repo","id_token":"idt"}`),
			tok: &Token{AccessToken: "at", RefreshToken: "rt", TokenType: "bearer", ExpiresIn: 3600, RefreshExpiresIn: 15897600,
				Scopes: []string{"read:user", "repo"}, IDToken: "idt"}},
		"github form": {r: resp(200, "application/x-www-form-urlencoded", "access_token=gho_x&scope=repo%2Cgist&token_type=bearer"),
			tok: &Token{AccessToken: "gho_x", TokenType: "bearer", Scopes: []string{"repo", "gist"}}},
		"form without content type": {r: resp(200, "", "access_token=x&expires_in=60"),
			tok: &Token{AccessToken: "x", ExpiresIn: 60}},
		"json without content type": {r: resp(200, "text/plain", `{"access_token":"x","scope":["a","b"]}`),
			tok: &Token{AccessToken: "x", Scopes: []string{"a", "b"}}},
		"github error with 200": {r: resp(200, "application/json",
			`{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}`), code: abi.CodeInvalidGrant},
		"github form error": {r: resp(200, "application/x-www-form-urlencoded", "error=bad_refresh_token"), code: abi.CodeInvalidGrant},
		"invalid_grant":     {r: resp(400, "application/json", `{"error":"invalid_grant"}`), code: abi.CodeInvalidGrant},
		"invalid_client":    {r: resp(401, "application/json", `{"error":"invalid_client"}`), code: abi.CodeInvalidClient},
		"slow_down":         {r: resp(400, "application/json", `{"error":"slow_down"}`), code: abi.CodeRateLimited, retryable: true},
		"odd error object":  {r: resp(400, "application/json", `{"error":{"message":"nope"}}`), code: abi.CodeProviderError},
		"server error html": {r: resp(502, "text/html", "<html>bad gateway</html>"), code: abi.CodeProviderError, retryable: true},
		"no access token":   {r: resp(200, "application/json", `{"token_type":"bearer"}`), code: abi.CodeProviderError},
		"broken json":       {r: resp(200, "application/json", `{"access_token":`), code: abi.CodeProviderError},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := ParseTokenResponse(tc.r)
			if tc.tok != nil {
				if err != nil || !reflect.DeepEqual(tok, tc.tok) {
					t.Fatalf("got %+v, %v; want %+v", tok, err, tc.tok)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Retryable != tc.retryable {
				t.Fatalf("err = %#v, want code %s retryable %v", err, tc.code, tc.retryable)
			}
			if e.Status != tc.r.StatusCode {
				t.Errorf("status %d, want %d", e.Status, tc.r.StatusCode)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	got := BasicAuth("id:1", "s e+cret")
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("id%3A1:s+e%2Bcret"))
	if got != want {
		t.Errorf("%s, want %s", got, want)
	}
}

func TestHeaderAndLinks(t *testing.T) {
	for in, want := range map[string]string{"content-type": "Content-Type", "X-RATELIMIT-remaining": "X-Ratelimit-Remaining", "Link": "Link", "a": "A"} {
		if got := CanonicalHeaderKey(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
	h := Header{}
	h.Add("link", `<https://api.example/repos?page=1>; rel="prev", <https://api.example/repos?page=3>; rel="next last"`)
	if got := NextLink(h); got != "https://api.example/repos?page=3" {
		t.Errorf("NextLink = %q", got)
	}
	if NextLink(Header{"Link": {`<x>; rel="prev"`}}) != "" {
		t.Error("NextLink without next")
	}
}

func TestCheckResponse(t *testing.T) {
	for status, want := range map[int]abi.Code{200: "", 401: abi.CodeInvalidToken, 429: abi.CodeRateLimited, 404: abi.CodeProviderError, 503: abi.CodeProviderError} {
		err := CheckResponse("GET", "https://api.example/user?access_token=SECRET", resp(status, "", ""))
		var e *Error
		if (want == "") != (err == nil) || (err != nil && (!errors.As(err, &e) || e.Code != want)) {
			t.Errorf("%d: %v, want %s", status, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%d: the query leaked into %q", status, err)
		}
	}
	r := resp(403, "", "")
	r.Header.Set("X-RateLimit-Remaining", "0")
	if e := CheckResponse("GET", "https://x/", r).(*Error); e.Code != abi.CodeRateLimited || !e.Retryable {
		t.Errorf("403 with an exhausted rate limit: %+v", e)
	}
}

func TestDefaultAuthorizeParams(t *testing.T) {
	v := DefaultAuthorizeParams(&AuthorizeRequest{ClientID: "c", RedirectURI: "https://a/cb", Scopes: []string{"a", "b"}, State: "s", CodeChallenge: "ch"})
	want := Values{"response_type": {"code"}, "client_id": {"c"}, "redirect_uri": {"https://a/cb"}, "scope": {"a b"},
		"state": {"s"}, "code_challenge": {"ch"}, "code_challenge_method": {"S256"}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("%v", v)
	}
}

type testProvider struct{ mode string }

func (p testProvider) Exchange(_ context.Context, r *ExchangeRequest) (*Token, error) {
	switch r.Code {
	case "panic":
		panic("boom")
	case "nil":
		return nil, nil
	case "plain":
		return nil, errors.New("plain failure")
	case "grant":
		return nil, ErrInvalidGrant("expired")
	}
	return &Token{AccessToken: "at-" + r.Code + "-" + r.Client.ID}, nil
}

func run(t *testing.T, op abi.Op, req abi.Message) (abi.Result, []byte) {
	t.Helper()
	var in []byte
	if req != nil {
		in = abi.Marshal(req)
	}
	var res abi.Result
	if err := abi.Unmarshal(dispatch(op, in, nil), &res); err != nil {
		t.Fatal(err)
	}
	return res, res.Payload
}

func TestDispatch(t *testing.T) {
	defer func(p any) { provider = p }(provider)
	provider = testProvider{}
	if got := Implemented(provider); got.String() != "authorize,exchange" {
		t.Errorf("implemented %s", got)
	}

	res, payload := run(t, abi.OpExchange, &abi.ExchangeRequest{Code: "c", Client: abi.Client{ID: "id"}})
	var tok abi.Token
	if res.Code != "" || abi.Unmarshal(payload, &tok) != nil || tok.AccessToken != "at-c-id" {
		t.Errorf("exchange: %+v %+v", res, tok)
	}
	res, payload = run(t, abi.OpAuthorize, &abi.AuthorizeRequest{ClientID: "c", Scopes: []string{"x"}})
	var ar abi.AuthorizeResult
	if res.Code != "" || abi.Unmarshal(payload, &ar) != nil || len(ar.Params) != 3 || ar.Params[0] != (abi.Param{Name: "client_id", Value: "c"}) {
		t.Errorf("authorize: %+v %+v", res, ar)
	}
	for code, want := range map[string]struct {
		code abi.Code
		msg  string
	}{
		"panic": {abi.CodeInternal, "plugin panicked: boom"},
		"nil":   {abi.CodeInternal, "neither a result nor an error"},
		"plain": {abi.CodeInternal, "plain failure"},
		"grant": {abi.CodeInvalidGrant, "expired"},
	} {
		res, _ := run(t, abi.OpExchange, &abi.ExchangeRequest{Code: code})
		if res.Code != want.code || !strings.Contains(res.Message, want.msg) {
			t.Errorf("%s: %+v", code, res)
		}
	}
	if res, _ := run(t, abi.OpRefresh, &abi.RefreshRequest{}); res.Code != abi.CodeUnsupported {
		t.Errorf("refresh: %+v", res)
	}
	var bad abi.Result
	if err := abi.Unmarshal(dispatch(abi.OpExchange, []byte{0xff}, nil), &bad); err != nil || bad.Code != abi.CodeInvalidRequest {
		t.Errorf("garbage request: %+v %v", bad, err)
	}
	if _, err := Do(context.Background(), NewRequest("GET", "https://x/", nil)); !errors.Is(err, errNoHost) {
		t.Errorf("Do outside the host: %v", err)
	}
}

// TestValuesMatchNetURL checks the SDK's form encoding against net/url,
// which plugins do not link.
func TestValuesMatchNetURL(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		s := string(b)
		if got, want := QueryEscape(s), url.QueryEscape(s); got != want {
			t.Fatalf("QueryEscape(%q) = %q, want %q", s, got, want)
		}
		if got, want := PathEscape(s), url.PathEscape(s); got != want {
			t.Fatalf("PathEscape(%q) = %q, want %q", s, got, want)
		}
		v := Values{s: {s, "x y"}, "k": {s}}
		if got, want := v.Encode(), url.Values(v).Encode(); got != want {
			t.Fatalf("Encode = %q, want %q", got, want)
		}
		back, err := ParseQuery(v.Encode())
		wantBack, werr := url.ParseQuery(v.Encode())
		if (err != nil) != (werr != nil) || !reflect.DeepEqual(map[string][]string(back), map[string][]string(wantBack)) {
			t.Fatalf("ParseQuery(%q) = %v, %v; net/url: %v, %v", v.Encode(), back, err, wantBack, werr)
		}
	}
	for _, bad := range []string{"a=%zz", "a=%4", "%"} {
		if _, err := ParseQuery(bad); err == nil {
			t.Errorf("ParseQuery(%q): no error", bad)
		}
	}
}
