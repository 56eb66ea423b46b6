package client

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

const testWorkerID = "3f2b8c1e-9a4d-4e6f-8b7a-0c1d2e3f4a5b"

// knownWorkerTokens are worker tokens for fixed secrets (32 zero bytes,
// bytes 0..31, 32 bytes of 0xff), computed outside Go: the server and any
// other implementation must agree on them.
var knownWorkerTokens = []string{
	"arbw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_12a8f8",
	"arbw_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8_ce8115",
	"arbw___________________________________________8_8999ea",
}

func newTestWorkerToken(t *testing.T) string {
	t.Helper()
	tok, err := NewWorkerToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// setWorkerEnv sets the default worker variables.
func setWorkerEnv(t *testing.T, id, token string) {
	t.Setenv(DefaultWorkerIDEnv, id)
	t.Setenv(DefaultWorkerTokenEnv, token)
}

func newTestWorkerTransport(t *testing.T, base http.RoundTripper) (*WorkerTransport, string) {
	t.Helper()
	tok := newTestWorkerToken(t)
	setWorkerEnv(t, testWorkerID, tok)
	wt, err := NewWorkerTransport(WorkerConfig{}, base)
	if err != nil {
		t.Fatal(err)
	}
	return wt, tok
}

// headerLog records the worker headers each path of a server received.
type headerLog struct {
	mu   sync.Mutex
	seen map[string][2]string
}

func (l *headerLog) record(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string][2]string{}
	}
	l.seen[r.URL.Path] = [2]string{r.Header.Get(HeaderWorkerID), r.Header.Get(HeaderWorkerToken)}
}

func (l *headerLog) get(path string) (id, token string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.seen[path]
	return h[0], h[1], ok
}

func TestWorkerTransportSetsHeaders(t *testing.T) {
	var log headerLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.record(r)
		io.Copy(w, r.Body)
	}))
	defer srv.Close()
	wt, tok := newTestWorkerTransport(t, nil)
	if wt.WorkerID() != testWorkerID {
		t.Errorf("WorkerID %q", wt.WorkerID())
	}

	for name, hc := range map[string]*http.Client{"Client()": wt.Client(), "plain client": {Transport: wt}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/work", strings.NewReader("job 1"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "job 1" {
			t.Errorf("%s: %d %q", name, resp.StatusCode, body)
		}
		if id, token, _ := log.get("/api/work"); id != testWorkerID || token != tok {
			t.Errorf("%s: server received id %q, token %q; want %q and the token", name, id, token, testWorkerID)
		}
		if len(req.Header) != 0 {
			t.Errorf("%s: the caller's request was modified: %v", name, req.Header)
		}
	}
}

func TestWorkerTransportReadsConfiguredEnv(t *testing.T) {
	tok := newTestWorkerToken(t)
	t.Setenv(DefaultWorkerIDEnv, "")
	t.Setenv(DefaultWorkerTokenEnv, "")
	t.Setenv("MY_ID", " "+strings.ToUpper(testWorkerID)+"\n")
	t.Setenv("MY_TOKEN", tok+"\n")
	wt, err := NewWorkerTransport(WorkerConfig{IDEnv: "MY_ID", TokenEnv: "MY_TOKEN"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wt.WorkerID() != testWorkerID || wt.token != tok {
		t.Errorf("read id %q (want it lowercased, trimmed) and a token equal to the variable: %v", wt.WorkerID(), wt.token == tok)
	}
}

func TestNewWorkerTransportEnvErrors(t *testing.T) {
	good := newTestWorkerToken(t)
	badSum := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])
	unset := "\x00unset"
	for _, c := range []struct {
		name, id, token string
		wantVar, want   string
	}{
		{"id unset", unset, good, "TEST_WORKER_ID", "not set"},
		{"id empty", "", good, "TEST_WORKER_ID", "empty"},
		{"token unset", testWorkerID, unset, "TEST_WORKER_TOKEN", "not set"},
		{"token blank", testWorkerID, " \n", "TEST_WORKER_TOKEN", "empty"},
		{"id not a UUID", "worker-7", good, "TEST_WORKER_ID", "UUID"},
		{"id a UUID without dashes", strings.ReplaceAll(testWorkerID, "-", ""), good, "TEST_WORKER_ID", "UUID"},
		{"id not hex", "3f2b8c1e-9a4d-4e6f-8b7a-0c1d2e3f4a5g", good, "TEST_WORKER_ID", "UUID"},
		{"swapped", good, testWorkerID, "TEST_WORKER_ID", "swapped"},
		{"token a UUID", testWorkerID, testWorkerID, "TEST_WORKER_TOKEN", "swapped"},
		{"token wrong checksum", testWorkerID, badSum, "TEST_WORKER_TOKEN", "checksum"},
		{"token cut short", testWorkerID, good[:40], "TEST_WORKER_TOKEN", "characters"},
		{"token no prefix", testWorkerID, good[len(WorkerTokenPrefix):], "TEST_WORKER_TOKEN", WorkerTokenPrefix},
		{"token other prefix", testWorkerID, "arbx_" + good[len(WorkerTokenPrefix):], "TEST_WORKER_TOKEN", WorkerTokenPrefix},
		{"token bad character", testWorkerID, good[:10] + "+" + good[11:], "TEST_WORKER_TOKEN", "form"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for name, v := range map[string]string{"TEST_WORKER_ID": c.id, "TEST_WORKER_TOKEN": c.token} {
				t.Setenv(name, "") // restored after the test
				if v == unset {
					if err := os.Unsetenv(name); err != nil {
						t.Fatal(err)
					}
				} else {
					t.Setenv(name, v)
				}
			}
			wt, err := NewWorkerTransport(WorkerConfig{IDEnv: "TEST_WORKER_ID", TokenEnv: "TEST_WORKER_TOKEN"}, nil)
			if err == nil {
				t.Fatalf("accepted: %v", wt)
			}
			msg := err.Error()
			if !strings.Contains(msg, "$"+c.wantVar) || !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want it to name $%s and say %q", msg, c.wantVar, c.want)
			}
			// Neither value is quoted, not even in part: a token may sit in
			// either variable.
			for _, v := range []string{c.id, c.token, good} {
				for i := 0; i+8 <= len(v); i++ {
					if strings.Contains(msg, v[i:i+8]) {
						t.Fatalf("error %q quotes %q from a value", msg, v[i:i+8])
					}
				}
			}
		})
	}
}

func TestWorkerTokenFormatRoundTrip(t *testing.T) {
	if WorkerTokenLength != 55 {
		t.Errorf("WorkerTokenLength %d, want 55", WorkerTokenLength)
	}
	seen := map[string]bool{}
	for range 200 {
		tok := newTestWorkerToken(t)
		if !ValidWorkerToken(tok) {
			t.Fatalf("NewWorkerToken made an invalid token of length %d", len(tok))
		}
		if seen[tok] {
			t.Fatal("NewWorkerToken repeated a token")
		}
		seen[tok] = true
		// Checked here independently of the implementation.
		if len(tok) != 55 || !strings.HasPrefix(tok, "arbw_") || tok[48] != '_' {
			t.Fatalf("token of length %d has the wrong shape", len(tok))
		}
		secret, err := base64.RawURLEncoding.Strict().DecodeString(tok[5:48])
		if err != nil || len(secret) != 32 {
			t.Fatalf("secret decodes to %d bytes, %v", len(secret), err)
		}
		sum := sha256.Sum256([]byte(tok[:48]))
		if tok[49:] != hex.EncodeToString(sum[:3]) {
			t.Fatal("checksum is not the first 3 bytes of SHA-256(prefix+secret) in hex")
		}
	}
	for _, tok := range knownWorkerTokens {
		if !ValidWorkerToken(tok) {
			t.Errorf("known token %s does not validate", tok)
		}
	}
}

func TestWorkerTokenOneCharacterChangedFails(t *testing.T) {
	// Fixed tokens, so that the outcome is certain: a 24-bit checksum
	// catches a given random change only with probability 1-2^-24.
	toks := append([]string{}, knownWorkerTokens...)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		var b [32]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		body := WorkerTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
		sum := sha256.Sum256([]byte(body))
		toks = append(toks, body+"_"+hex.EncodeToString(sum[:3]))
	}
	for _, tok := range toks {
		if !ValidWorkerToken(tok) {
			t.Fatalf("%s does not validate", tok)
		}
		for i := range len(tok) {
			for c := range 256 {
				if byte(c) == tok[i] {
					continue
				}
				changed := tok[:i] + string([]byte{byte(c)}) + tok[i+1:]
				if ValidWorkerToken(changed) {
					t.Errorf("%s with position %d changed to %q validates", tok, i, byte(c))
				}
			}
			if ValidWorkerToken(tok[:i] + tok[i+1:]) {
				t.Errorf("%s without position %d validates", tok, i)
			}
			if ValidWorkerToken(tok[:i] + "A" + tok[i:]) {
				t.Errorf("%s with a character inserted at %d validates", tok, i)
			}
		}
		if ValidWorkerToken(tok+"0") || ValidWorkerToken(" "+tok) || ValidWorkerToken(strings.ToUpper(tok[:5])+tok[5:]) {
			t.Errorf("%s: padded or upper-case prefix validates", tok)
		}
	}
}

func TestWorkerTokenRandomStringsNeverValidate(t *testing.T) {
	// Seeded, so that the test cannot flake: a well-shaped string with a
	// random checksum validates with probability 2^-24.
	r := rand.New(rand.NewPCG(7, 11))
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	pick := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := range 10000 {
		n := r.IntN(80)
		raw := make([]byte, n)
		for j := range raw {
			raw[j] = byte(r.Uint32())
		}
		var secret [32]byte
		for j := range secret {
			secret[j] = byte(r.Uint32())
		}
		for _, s := range []string{
			string(raw),
			pick(b64, WorkerTokenLength),
			WorkerTokenPrefix + pick(b64, WorkerTokenLength-len(WorkerTokenPrefix)),
			// Right shape, canonical secret, random checksum.
			WorkerTokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:]) + "_" + pick("0123456789abcdef", 6),
		} {
			if ValidWorkerToken(s) {
				t.Fatalf("random string %d validates: %q", i, s)
			}
		}
	}
}

// recordingRT answers 200 to everything and remembers what it was sent.
type recordingRT struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rt *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, req)
	rt.mu.Unlock()
	closeBody(req)
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestWorkerTransportRefusesPlainHTTPOffLoopback(t *testing.T) {
	rt := &recordingRT{}
	wt, tok := newTestWorkerTransport(t, rt)
	for _, u := range []string{
		"http://arbor.example/api/work",
		"http://10.0.0.1/api/work",
		"http://localhost.arbor.example/",
		"HTTP://arbor.example/",
		"ftp://arbor.example/",
		"ws://127.0.0.1/",
	} {
		body := &closeTracker{Reader: strings.NewReader("x")}
		req, err := http.NewRequest(http.MethodPost, u, body)
		if err != nil {
			t.Fatal(err)
		}
		_, err = wt.RoundTrip(req)
		if err == nil || strings.Contains(err.Error(), tok) {
			t.Errorf("%s: err = %v, want a refusal", u, err)
		}
		if !body.closed {
			t.Errorf("%s: request body not closed", u)
		}
	}
	if len(rt.reqs) != 0 {
		t.Fatalf("%d refused requests were sent", len(rt.reqs))
	}
	for _, u := range []string{
		"https://arbor.example/api/work",
		"http://127.0.0.1:8080/api/work",
		"http://127.0.0.2/",
		"http://localhost:8080/",
		"http://[::1]:8080/",
	} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := wt.RoundTrip(req); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if len(rt.reqs) != 5 {
		t.Fatalf("%d requests sent, want 5", len(rt.reqs))
	}
	for _, r := range rt.reqs {
		if r.Header.Get(HeaderWorkerID) != testWorkerID || r.Header.Get(HeaderWorkerToken) != tok {
			t.Errorf("%s sent without the worker headers", r.URL)
		}
	}
}

func TestWorkerTransportRedirectToOtherOriginDropsHeaders(t *testing.T) {
	var otherLog, originLog headerLog
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherLog.record(r)
		if r.URL.Path == "/back" {
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		}
	}))
	defer other.Close()
	var origin *httptest.Server
	origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originLog.record(r)
		switch r.URL.Path {
		case "/to-other":
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
		case "/to-other-307":
			http.Redirect(w, r, other.URL+"/landing-307", http.StatusTemporaryRedirect)
		case "/to-localhost":
			// Same server, another host name: another origin.
			http.Redirect(w, r, strings.Replace(origin.URL, "127.0.0.1", "localhost", 1)+"/via-localhost", http.StatusFound)
		case "/same":
			http.Redirect(w, r, "/final-same", http.StatusFound)
		case "/bounce":
			// Out to the other origin and back again.
			http.Redirect(w, r, other.URL+"/back?to="+origin.URL+"/final-bounce", http.StatusFound)
		}
	}))
	defer origin.Close()
	wt, tok := newTestWorkerTransport(t, nil)

	for name, hc := range map[string]*http.Client{"Client()": wt.Client(), "plain client": {Transport: wt}} {
		otherLog, originLog = headerLog{}, headerLog{}
		do := func(method, path string, callerHeaders bool) {
			t.Helper()
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequest(method, origin.URL+path, body)
			if callerHeaders {
				// Set by the caller on the first request: http.Client
				// copies them onto every redirect.
				req.Header.Set(HeaderWorkerID, testWorkerID)
				req.Header.Set(HeaderWorkerToken, tok)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("%s: %s %s: %v", name, method, path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		do(http.MethodGet, "/to-other", false)
		do(http.MethodPost, "/to-other-307", true)
		do(http.MethodGet, "/to-localhost", false)
		do(http.MethodGet, "/same", false)
		do(http.MethodGet, "/bounce", false)

		for _, p := range []string{"/to-other", "/to-other-307", "/to-localhost", "/same", "/bounce"} {
			if id, token, _ := originLog.get(p); id != testWorkerID || token != tok {
				t.Errorf("%s: first request %s without the worker headers", name, p)
			}
		}
		for _, c := range []struct {
			log  *headerLog
			path string
		}{{&otherLog, "/landing"}, {&otherLog, "/landing-307"}, {&originLog, "/via-localhost"}, {&otherLog, "/back"}, {&originLog, "/final-bounce"}} {
			id, token, ok := c.log.get(c.path)
			if !ok {
				t.Errorf("%s: the redirect to %s was not followed", name, c.path)
			} else if id != "" || token != "" {
				t.Errorf("%s: the redirect to %s carried the worker headers (id %q, token set %v)", name, c.path, id, token != "")
			}
		}
		if id, token, ok := originLog.get("/final-same"); !ok || id != testWorkerID || token != tok {
			t.Errorf("%s: a redirect on the same origin lost the worker headers", name)
		}
	}
}

func TestCheckWorkerRedirect(t *testing.T) {
	first, _ := http.NewRequest(http.MethodGet, "https://arbor.example/a", nil)
	for _, c := range []struct {
		to   string
		keep bool
	}{
		{"https://arbor.example/b", true},
		{"https://ARBOR.example:443/b", true},
		{"https://evil.example/b", false},
		{"https://arbor.example:8443/b", false},
		{"http://arbor.example/b", false},
		{"https://sub.arbor.example/b", false},
	} {
		next, _ := http.NewRequest(http.MethodGet, c.to, nil)
		next.Header.Set(HeaderWorkerID, testWorkerID)
		next.Header.Set(HeaderWorkerToken, "t")
		if err := checkWorkerRedirect(next, []*http.Request{first}); err != nil {
			t.Fatal(err)
		}
		kept := next.Header.Get(HeaderWorkerID) != "" || next.Header.Get(HeaderWorkerToken) != ""
		if kept != c.keep {
			t.Errorf("redirect to %s: headers kept %v, want %v", c.to, kept, c.keep)
		}
	}
	via := make([]*http.Request, 10)
	for i := range via {
		via[i] = first
	}
	if err := checkWorkerRedirect(first, via); err == nil {
		t.Error("an 11th redirect was allowed")
	}
}

func TestWorkerTransportDoesNotPrintToken(t *testing.T) {
	wt, tok := newTestWorkerTransport(t, nil)
	s := fmt.Sprintf("%v %+v %#v %s", wt, wt, wt, wt)
	if strings.Contains(s, tok) || strings.Contains(s, tok[5:20]) || !strings.Contains(s, testWorkerID) {
		t.Errorf("formatted as %q", s)
	}
}

// referenceValidWorkerToken is the token format written out plainly from
// the specification, with the standard library's strict base64 decoder, as
// an independent reference for the allocation-free check.
func referenceValidWorkerToken(s string) bool {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(s) != 55 || !strings.HasPrefix(s, "arbw_") || s[48] != '_' {
		return false
	}
	for _, c := range []byte(s[5:48]) {
		if strings.IndexByte(alphabet, c) < 0 {
			return false
		}
	}
	secret, err := base64.RawURLEncoding.Strict().DecodeString(s[5:48])
	if err != nil || len(secret) != 32 {
		return false
	}
	sum := sha256.Sum256([]byte(s[:48]))
	return s[49:] == hex.EncodeToString(sum[:3])
}

// withChecksum returns body (prefix and secret) with its correct checksum.
func withChecksum(body string) string {
	sum := sha256.Sum256([]byte(body))
	return body + "_" + hex.EncodeToString(sum[:3])
}

func TestWorkerTokenCheckAgreesWithReference(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	tests := []struct {
		name string
		tok  string
		want bool
	}{
		{"known", knownWorkerTokens[1], true},
		{"upper-case checksum", knownWorkerTokens[1][:49] + strings.ToUpper(knownWorkerTokens[1][49:]), false},
		{"checksum with a non-hex digit", knownWorkerTokens[0][:54] + "g", false},
		{"dot in the secret, right checksum", withChecksum("arbw_" + strings.Repeat("A", 42) + "."), false},
		{"padding in the secret, right checksum", withChecksum("arbw_" + strings.Repeat("A", 42) + "="), false},
		{"dash separator", strings.Replace(knownWorkerTokens[0], "A_", "A-", 1), false},
		{"empty", "", false},
		{"prefix only", "arbw_", false},
		{"short prefix", "arb", false},
	}
	// Every possible last secret character, each with a correct checksum:
	// only those whose 2 unused low bits are zero encode 32 bytes
	// canonically.
	for i := 0; i < len(alphabet); i++ {
		tests = append(tests, struct {
			name string
			tok  string
			want bool
		}{fmt.Sprintf("last secret character %q", alphabet[i]), withChecksum("arbw_" + strings.Repeat("B", 42) + alphabet[i:i+1]), i%4 == 0})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ref := referenceValidWorkerToken(tt.tok); ref != tt.want {
				t.Fatalf("the reference says %v, the table %v: fix the table", ref, tt.want)
			}
			if got := ValidWorkerToken(tt.tok); got != tt.want {
				t.Errorf("ValidWorkerToken = %v, want %v", got, tt.want)
			}
			if got := ValidWorkerTokenBytes([]byte(tt.tok)); got != tt.want {
				t.Errorf("ValidWorkerTokenBytes = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzValidWorkerToken checks the allocation-free format check against
// the plain reference, for strings and byte slices alike.
func FuzzValidWorkerToken(f *testing.F) {
	for _, tok := range knownWorkerTokens {
		f.Add(tok)
		f.Add(tok[:54])
		f.Add(tok[:47] + "B" + tok[48:])
	}
	f.Add(withChecksum("arbw_" + strings.Repeat("_", 43)))
	f.Add(withChecksum("arbw_" + strings.Repeat("A", 42) + "\n"))
	f.Fuzz(func(t *testing.T, s string) {
		want := referenceValidWorkerToken(s)
		if got := ValidWorkerToken(s); got != want {
			t.Fatalf("ValidWorkerToken(%q) = %v, reference %v", s, got, want)
		}
		if got := ValidWorkerTokenBytes([]byte(s)); got != want {
			t.Fatalf("ValidWorkerTokenBytes(%q) = %v, reference %v", s, got, want)
		}
		// A token made valid by its own checksum must agree too, so that
		// the fuzzer reaches the secret's canonical-encoding check.
		if len(s) >= 48 {
			fixed := withChecksum("arbw_" + s[5:48])
			if got, ref := ValidWorkerToken(fixed), referenceValidWorkerToken(fixed); got != ref {
				t.Fatalf("ValidWorkerToken(%q) = %v, reference %v", fixed, got, ref)
			}
		}
	})
}

func BenchmarkValidWorkerTokenBytes(b *testing.B) {
	tok := []byte(knownWorkerTokens[1])
	b.ReportAllocs()
	for b.Loop() {
		if !ValidWorkerTokenBytes(tok) {
			b.Fatal("known token refused")
		}
	}
}
