package client

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Tendril workers authenticate every request to Arbor with two headers:
//
//	X-Worker-ID: <worker id, a UUID>
//	X-Worker-Token: <worker token>
//
// A worker token is
//
//	arbw_<secret>_<checksum>
//
// where secret is 32 random bytes in raw (unpadded) base64url, 43
// characters, and checksum is the first 3 bytes of SHA-256 over
// "arbw_"+secret in lowercase hex, 6 characters: 55 characters in all. The
// prefix makes a leaked token easy to recognize (secret scanners, logs);
// the checksum catches a mistyped or truncated token before any request is
// made. It is not a MAC: anyone can make a well-formed token, and only the
// server, which stores the SHA-256 of each worker's token, can tell
// whether one is real.
//
// This file is the one definition of the format: the server
// (service/workers) mints and checks tokens with NewWorkerToken and
// ValidWorkerToken.
const (
	// WorkerTokenPrefix starts every worker token.
	WorkerTokenPrefix = "arbw_"
	// WorkerTokenLength is the length of a worker token: the prefix, 43
	// characters of secret, "_" and 6 of checksum.
	WorkerTokenLength = len(WorkerTokenPrefix) + workerSecretChars + 1 + workerChecksumChars

	// HeaderWorkerID and HeaderWorkerToken carry a worker's credentials.
	HeaderWorkerID    = "X-Worker-ID"
	HeaderWorkerToken = "X-Worker-Token"

	// DefaultWorkerIDEnv and DefaultWorkerTokenEnv are the environment
	// variables NewWorkerTransport reads unless WorkerConfig names others.
	DefaultWorkerIDEnv    = "TENDRIL_WORKER_ID"
	DefaultWorkerTokenEnv = "TENDRIL_WORKER_TOKEN"
)

const (
	workerSecretBytes   = 32
	workerSecretChars   = 43 // raw base64url of 32 bytes
	workerChecksumBytes = 3
	workerChecksumChars = 2 * workerChecksumBytes
	workerTokenFormat   = "arbw_ followed by 43 base64url characters, \"_\" and 6 lowercase hex digits"
)

// NewWorkerToken returns a new worker token: 32 bytes from crypto/rand,
// with prefix and checksum.
func NewWorkerToken() (string, error) {
	var b [workerSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	body := WorkerTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return body + "_" + workerChecksum(body), nil
}

// ValidWorkerToken reports whether s is a well-formed worker token:
// WorkerTokenPrefix, exactly 43 base64url characters encoding 32 bytes,
// "_", and the 6-character lowercase hex checksum of the part before it.
// It checks the format only; whether the server knows the token is another
// matter.
func ValidWorkerToken(s string) bool {
	return workerTokenProblem(s) == ""
}

// ValidWorkerTokenBytes is ValidWorkerToken for a token still in a
// request's header buffer. It neither copies nor allocates, for servers
// that check a token on every request.
func ValidWorkerTokenBytes(b []byte) bool {
	return workerTokenProblem(b) == ""
}

// workerTokenProblem says what is wrong with s as a worker token, or ""
// if nothing is. The answer never quotes s. A well-formed token costs no
// allocation: servers run this on every worker request.
func workerTokenProblem[T ~string | ~[]byte](s T) string {
	if len(s) < len(WorkerTokenPrefix) || !hasWorkerTokenPrefix(s) {
		return "does not start with " + WorkerTokenPrefix + " (want " + workerTokenFormat + ")"
	}
	if len(s) != WorkerTokenLength {
		return fmt.Sprintf("has %d characters, want %d (%s)", len(s), WorkerTokenLength, workerTokenFormat)
	}
	const bodyLen = WorkerTokenLength - workerChecksumChars - 1
	secret := s[len(WorkerTokenPrefix):bodyLen]
	last := -1
	for i := 0; i < len(secret); i++ {
		if last = base64URLValue(secret[i]); last < 0 {
			return "is not of the form " + workerTokenFormat
		}
	}
	// Only the canonical encoding of 32 bytes: 43 characters carry 258
	// bits, and the last character's 2 unused low bits must be zero.
	if last&3 != 0 || s[bodyLen] != '_' {
		return "is not of the form " + workerTokenFormat
	}
	var got [workerChecksumBytes]byte
	for i := range got {
		hi, lo := lowerHexValue(s[bodyLen+1+2*i]), lowerHexValue(s[bodyLen+2+2*i])
		if hi < 0 || lo < 0 {
			return "is not of the form " + workerTokenFormat
		}
		got[i] = byte(hi<<4 | lo)
	}
	var body [bodyLen]byte
	copy(body[:], s[:bodyLen])
	want := sha256.Sum256(body[:])
	if subtle.ConstantTimeCompare(got[:], want[:workerChecksumBytes]) != 1 {
		return "has a wrong checksum (mistyped or cut short?)"
	}
	return ""
}

func hasWorkerTokenPrefix[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(WorkerTokenPrefix); i++ {
		if s[i] != WorkerTokenPrefix[i] {
			return false
		}
	}
	return true
}

func workerChecksum(body string) string {
	h := sha256.Sum256([]byte(body))
	return hex.EncodeToString(h[:workerChecksumBytes])
}

// base64URLValue is the 6-bit value of a base64url character, or -1.
func base64URLValue(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}

// lowerHexValue is the value of a lowercase hex digit, or -1.
func lowerHexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// canonicalUUID returns s, a UUID in its textual form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex digits in either case), in
// lowercase; ok is false if s is not one.
func canonicalUUID(s string) (id string, ok bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

// WorkerConfig says where a Tendril worker finds its credentials. Empty
// fields mean DefaultWorkerIDEnv and DefaultWorkerTokenEnv.
type WorkerConfig struct {
	IDEnv    string // environment variable holding the worker id (a UUID)
	TokenEnv string // environment variable holding the worker token
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.IDEnv == "" {
		c.IDEnv = DefaultWorkerIDEnv
	}
	if c.TokenEnv == "" {
		c.TokenEnv = DefaultWorkerTokenEnv
	}
	return c
}

// WorkerTransport is an http.RoundTripper that authenticates a Tendril
// worker's requests to Arbor: it adds X-Worker-ID and X-Worker-Token to
// every request, on a clone (the caller's request is not modified).
//
// It refuses, with an error and without sending anything, any request that
// is not https, except plain http to a loopback host (arbor dev).
//
// A RoundTripper does not follow redirects; an http.Client does, and calls
// RoundTrip again for each hop. On such a hop (a request whose Response is
// set, as the client sets it) the credentials are added only if every
// request of the redirect chain is on the same origin (scheme, host and
// port) as this one, and removed if the caller had set them on the first
// request; so no http.Client forwards them to another origin, and none
// lets another origin send them back to a path of its choosing. Client
// returns an http.Client that in addition strips them in CheckRedirect.
//
// The credentials are read once, by NewWorkerTransport. A WorkerTransport
// is safe for concurrent use. Its String method shows the worker id, never
// the token.
type WorkerTransport struct {
	base  http.RoundTripper
	id    string
	token string
}

// NewWorkerTransport reads the worker id and token from the environment
// variables cfg names (surrounding white space is ignored) and returns a
// WorkerTransport sending through base (http.DefaultTransport when nil).
// It fails, naming the variable but never quoting its value, if either is
// unset or empty, if the id is not a UUID, or if the token fails
// ValidWorkerToken.
func NewWorkerTransport(cfg WorkerConfig, base http.RoundTripper) (*WorkerTransport, error) {
	cfg = cfg.withDefaults()
	if base == nil {
		base = http.DefaultTransport
	}
	rawID, err := workerEnv(cfg.IDEnv, "the worker id")
	if err != nil {
		return nil, err
	}
	token, err := workerEnv(cfg.TokenEnv, "the worker token")
	if err != nil {
		return nil, err
	}
	id, ok := canonicalUUID(rawID)
	if !ok {
		if ValidWorkerToken(rawID) {
			return nil, fmt.Errorf("$%s holds a worker token, not the worker id; are $%s and $%s swapped?", cfg.IDEnv, cfg.IDEnv, cfg.TokenEnv)
		}
		return nil, fmt.Errorf("$%s is not a worker id: want a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", cfg.IDEnv)
	}
	if p := workerTokenProblem(token); p != "" {
		if _, ok := canonicalUUID(token); ok {
			return nil, fmt.Errorf("$%s holds a UUID, not the worker token; are $%s and $%s swapped?", cfg.TokenEnv, cfg.IDEnv, cfg.TokenEnv)
		}
		return nil, fmt.Errorf("$%s is not a worker token: it %s", cfg.TokenEnv, p)
	}
	return &WorkerTransport{base: base, id: id, token: token}, nil
}

func workerEnv(name, what string) (string, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return "", fmt.Errorf("$%s is not set: it should hold %s", name, what)
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("$%s is empty: it should hold %s", name, what)
	}
	return v, nil
}

// WorkerID returns the worker id the transport sends (lowercase).
func (t *WorkerTransport) WorkerID() string { return t.id }

// String describes the transport without its token.
func (t *WorkerTransport) String() string { return "client.WorkerTransport{worker " + t.id + "}" }

// GoString is String, so that %#v does not print the token either.
func (t *WorkerTransport) GoString() string { return t.String() }

// RoundTrip implements http.RoundTripper.
func (t *WorkerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("worker transport: request without URL")
	}
	if err := workerSchemeAllowed(req.URL); err != nil {
		closeBody(req)
		return nil, err
	}
	r := req.Clone(req.Context())
	if sameOriginChain(req) {
		r.Header.Set(HeaderWorkerID, t.id)
		r.Header.Set(HeaderWorkerToken, t.token)
	} else {
		stripWorkerHeaders(r.Header)
	}
	return t.base.RoundTrip(r)
}

// Client returns a new http.Client sending through t. Its CheckRedirect
// follows up to 10 redirects like the default one and strips the worker
// headers from a redirect whose chain leaves the first request's origin
// (RoundTrip would not add them there anyway). It has no Timeout; set one,
// or use request contexts, as suits the calls made.
func (t *WorkerTransport) Client() *http.Client {
	return &http.Client{Transport: t, CheckRedirect: checkWorkerRedirect}
}

func checkWorkerRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	for _, r := range via {
		if !sameOriginURL(r.URL, req.URL) {
			stripWorkerHeaders(req.Header)
			break
		}
	}
	return nil
}

func stripWorkerHeaders(h http.Header) {
	h.Del(HeaderWorkerID)
	h.Del(HeaderWorkerToken)
}

// workerSchemeAllowed: https anywhere, plain http only to loopback.
func workerSchemeAllowed(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("worker transport: refusing to send worker credentials over plain http to %s; use https (plain http is only allowed on loopback)", u.Host)
	default:
		return fmt.Errorf("worker transport: refusing scheme %q; use https", u.Scheme)
	}
}

// sameOriginChain reports whether req and, if it is a redirect made by an
// http.Client, every earlier request of its chain are on one origin. A
// chain that cannot be followed back to its first request counts as
// crossing origins.
func sameOriginChain(req *http.Request) bool {
	r := req
	for hops := 0; r.Response != nil; hops++ {
		prev := r.Response.Request
		if prev == nil || prev.URL == nil || hops >= 100 || !sameOriginURL(prev.URL, req.URL) {
			return false
		}
		r = prev
	}
	return true
}

func sameOriginURL(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && hostPort(a) == hostPort(b)
}
