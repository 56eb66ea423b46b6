// Package clienttest is a fake Arbor that implements the CLI login contract
// of docs/cli-login.md (start, the /cli/login page, exchange, refresh,
// logout, me) in memory, for the tests of sdk/client and of CLIs built on
// it. It is a fake of the contract, not of Arbor: tokens are opaque random
// strings, not JWTs, and "approving" a request is a method call (Approve)
// or automatic (Server.AutoCode) instead of a signed-in browser.
//
// Besides the contract it serves GET/POST /api/echo, a bearer-protected
// route that answers 200 with the request body, standing in for Arbor's
// API and proxied api routes.
package clienttest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Alphabet of verification codes.
const Alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// User is the identity the fake signs everyone in as.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Login string `json:"login"`
}

// StartRequest is what a client sent to /api/auth/cli/start (or the
// query of /cli/login when it skipped start).
type StartRequest struct {
	DeviceCode    string            `json:"device_code"`
	CodeChallenge string            `json:"code_challenge"`
	ClientName    string            `json:"client_name"`
	ClientInfo    map[string]string `json:"client_info"`
}

// ExchangeRequest is what a client sent to /api/auth/cli/exchange.
type ExchangeRequest struct {
	DeviceCode       string `json:"device_code"`
	VerificationCode string `json:"verification_code"`
	CodeVerifier     string `json:"code_verifier"`
}

// Server is the fake. Set its fields before the requests they should
// affect, not while requests are in flight; the handlers read them under
// the fake's lock.
type Server struct {
	*httptest.Server

	// User is who every login signs in as.
	User User
	// AccessTTL and RefreshTTL are the token lifetimes (1 h and 90 days).
	AccessTTL, RefreshTTL time.Duration
	// RequestTTL is how long a login request lives (10 minutes).
	RequestTTL time.Duration
	// AutoCode, when set, approves every new request at once with this
	// verification code.
	AutoCode string
	// NoStart makes /api/auth/cli/start answer 404, as a server that only
	// knows the /cli/login page.
	NoStart bool
	// RefreshDelay is added to every refresh, to let concurrent requests
	// pile up behind it.
	RefreshDelay time.Duration

	mu         sync.Mutex
	requests   map[string]*loginRequest
	access     map[string]*issued
	refresh    map[string]*issued
	revoked    map[string]bool // families
	families   int
	starts     []StartRequest
	exchanges  []ExchangeRequest
	refreshes  int
	logouts    int
	apiCalls   int
	fail401    int
	lastAuthz  string
	pageVisits int
}

type loginRequest struct {
	StartRequest
	created  time.Time
	code     string // "" until approved
	wrong    int
	used     bool
	burned   bool
	fromPage bool
}

type issued struct {
	family  int
	expires time.Time
	used    bool // refresh tokens: rotated out
}

// New starts a fake Arbor on 127.0.0.1. Close it when done (NewForTest
// does that for you).
func New() *Server {
	s := &Server{
		User:       User{ID: "usr_fake1", Email: "ada@example.com", Login: "ada"},
		AccessTTL:  time.Hour,
		RefreshTTL: 90 * 24 * time.Hour,
		RequestTTL: 10 * time.Minute,
		requests:   map[string]*loginRequest{},
		access:     map[string]*issued{},
		refresh:    map[string]*issued{},
		revoked:    map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/auth/cli/start", s.handleStart)
	mux.HandleFunc("GET /cli/login", s.handlePage)
	mux.HandleFunc("POST /api/auth/cli/exchange", s.handleExchange)
	mux.HandleFunc("POST /api/auth/cli/refresh", s.handleRefresh)
	mux.HandleFunc("POST /api/auth/cli/logout", s.handleLogout)
	mux.HandleFunc("GET /api/auth/me", s.handleMe)
	mux.HandleFunc("/api/echo", s.handleEcho)
	s.Server = httptest.NewUnstartedServer(mux)
	s.Start()
	return s
}

// NewForTest starts a fake and closes it at the end of the test.
func NewForTest(t interface{ Cleanup(func()) }) *Server {
	s := New()
	t.Cleanup(s.Close)
	return s
}

// Approve approves the request of deviceCode, as the user would in the
// browser, and returns the verification code to type.
func (s *Server) Approve(deviceCode string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests[deviceCode]
	if r == nil {
		return "", fmt.Errorf("no login request %q", deviceCode)
	}
	if r.code == "" {
		r.code = randomCode()
	}
	return r.code, nil
}

// Starts returns the start requests received, oldest first (including
// requests created by visiting /cli/login).
func (s *Server) Starts() []StartRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StartRequest(nil), s.starts...)
}

// Exchanges returns the exchange requests received, oldest first.
func (s *Server) Exchanges() []ExchangeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ExchangeRequest(nil), s.exchanges...)
}

// Refreshes is how many refresh calls were received.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// PageVisits is how many times /cli/login was fetched.
func (s *Server) PageVisits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pageVisits
}

// Logouts is how many successful logouts were received.
func (s *Server) Logouts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logouts
}

// APICalls is how many requests /api/echo and /api/auth/me received.
func (s *Server) APICalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiCalls
}

// LastAuthorization is the Authorization header of the last API call.
func (s *Server) LastAuthorization() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuthz
}

// Fail401 makes the next n API calls answer 401 whatever their token.
func (s *Server) Fail401(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail401 = n
}

// RevokeAccess makes every access token issued so far invalid (as after a
// secret rotation); refresh tokens keep working.
func (s *Server) RevokeAccess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = map[string]*issued{}
}

// RevokeAll revokes every login: every refresh then answers invalid_grant.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range s.refresh {
		s.revoked[fmt.Sprint(i.family)] = true
	}
	s.access = map[string]*issued{}
}

// AccessTokenValid reports whether the fake accepts tok as an access token.
func (s *Server) AccessTokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accessOK(tok)
}

// RefreshTokenValid reports whether the fake would accept tok for a refresh.
func (s *Server) RefreshTokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.refresh[tok]
	return i != nil && !i.used && !s.revoked[fmt.Sprint(i.family)] && time.Now().Before(i.expires)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	var in StartRequest
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	noStart := s.NoStart
	s.mu.Unlock()
	if noStart {
		writeErr(w, http.StatusNotFound, "not_found", "no such route")
		return
	}
	if !uuidRE.MatchString(in.DeviceCode) {
		writeErr(w, http.StatusBadRequest, "invalid_request", "device_code must be a UUID v4")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests[in.DeviceCode] != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "device_code already used")
		return
	}
	s.addRequest(in, false)
	writeJSON(w, http.StatusCreated, map[string]any{
		"login_url":  s.URL + "/cli/login?device_code=" + in.DeviceCode,
		"expires_in": int(s.RequestTTL / time.Second),
	})
}

// addRequest records a new login request; s.mu is held.
func (s *Server) addRequest(in StartRequest, fromPage bool) {
	s.starts = append(s.starts, in)
	lr := &loginRequest{StartRequest: in, created: time.Now(), fromPage: fromPage}
	if s.AutoCode != "" {
		lr.code = s.AutoCode
	}
	s.requests[in.DeviceCode] = lr
}

// handlePage stands in for the browser page: it creates the request when
// the client skipped start.
func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	dc := r.URL.Query().Get("device_code")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageVisits++
	if s.requests[dc] == nil {
		if !uuidRE.MatchString(dc) {
			http.Error(w, "unknown login request", http.StatusBadRequest)
			return
		}
		s.addRequest(StartRequest{DeviceCode: dc, CodeChallenge: r.URL.Query().Get("code_challenge")}, true)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, "<!doctype html><title>Approve CLI login</title><p>fake Arbor: approve "+dc+"</p>")
}

func (s *Server) handleExchange(w http.ResponseWriter, r *http.Request) {
	var in ExchangeRequest
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exchanges = append(s.exchanges, in)
	lr := s.requests[in.DeviceCode]
	switch {
	case in.DeviceCode == "" || in.VerificationCode == "":
		writeErr(w, 400, "invalid_request", "device_code and verification_code are required")
		return
	case lr == nil:
		writeErr(w, 400, "unknown_device_code", "no such login request")
		return
	case lr.used:
		writeErr(w, 400, "device_code_used", "this login request was already exchanged")
		return
	case lr.burned:
		writeErr(w, 400, "device_code_burned", "too many wrong codes")
		return
	case time.Since(lr.created) > s.RequestTTL:
		writeErr(w, 400, "expired_device_code", "the login request expired")
		return
	}
	if lr.code == "" || !strings.EqualFold(in.VerificationCode, lr.code) {
		lr.wrong++
		if lr.wrong >= 5 {
			lr.burned = true
		}
		writeErr(w, 400, "invalid_code", "the code is wrong or the request is not approved")
		return
	}
	if lr.CodeChallenge != "" {
		sum := sha256.Sum256([]byte(in.CodeVerifier))
		if !verifierRE.MatchString(in.CodeVerifier) || base64.RawURLEncoding.EncodeToString(sum[:]) != lr.CodeChallenge {
			writeErr(w, 400, "invalid_verifier", "code_verifier does not match code_challenge")
			return
		}
	}
	lr.used = true
	s.families++
	writeJSON(w, 200, s.mint(s.families))
}

// mint issues a token pair of a family; s.mu is held.
func (s *Server) mint(family int) map[string]any {
	at, rt := "at_"+randomHex(), "rt_"+randomHex()
	now := time.Now()
	s.access[at] = &issued{family: family, expires: now.Add(s.AccessTTL)}
	s.refresh[rt] = &issued{family: family, expires: now.Add(s.RefreshTTL)}
	return map[string]any{
		"access_token": at, "refresh_token": rt, "token_type": "Bearer",
		"expires_in":         int64(s.AccessTTL / time.Second),
		"refresh_expires_in": int64(s.RefreshTTL / time.Second),
		"user":               s.User,
	}
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	delay := s.RefreshDelay
	s.mu.Unlock()
	time.Sleep(delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes++
	i := s.refresh[in.RefreshToken]
	switch {
	case i == nil || s.revoked[fmt.Sprint(i.family)] || !time.Now().Before(i.expires):
		writeErr(w, 401, "invalid_grant", "the refresh token is expired or revoked")
		return
	case i.used:
		// Reuse of a rotated token: revoke the whole login.
		s.revoked[fmt.Sprint(i.family)] = true
		writeErr(w, 401, "invalid_grant", "the refresh token was already used")
		return
	}
	i.used = true
	writeJSON(w, 200, s.mint(i.family))
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var i *issued
	if in.RefreshToken != "" {
		i = s.refresh[in.RefreshToken]
	} else if at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		i = s.access[at]
	}
	if i == nil {
		writeErr(w, 401, "invalid_grant", "unknown token")
		return
	}
	s.revoked[fmt.Sprint(i.family)] = true
	s.logouts++
	w.WriteHeader(http.StatusNoContent)
}

// accessOK checks an access token; s.mu is held.
func (s *Server) accessOK(tok string) bool {
	i := s.access[tok]
	return i != nil && !s.revoked[fmt.Sprint(i.family)] && time.Now().Before(i.expires)
}

// authorize counts an API call and checks its bearer token; s.mu is held.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	s.apiCalls++
	s.lastAuthz = r.Header.Get("Authorization")
	at, ok := strings.CutPrefix(s.lastAuthz, "Bearer ")
	if s.fail401 > 0 {
		s.fail401--
		ok = false
	}
	if !ok || !s.accessOK(at) {
		writeErr(w, 401, "unauthenticated", "sign in first")
		return false
	}
	return true
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorize(w, r) {
		return
	}
	writeJSON(w, 200, map[string]string{"user_id": s.User.ID, "email": s.User.Email, "login": s.User.Login})
}

func (s *Server) handleEcho(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	ok := s.authorize(w, r)
	s.mu.Unlock()
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(body)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		writeErr(w, 400, "invalid_request", "body must be JSON")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

func randomHex() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomCode() string {
	var b [6]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = Alphabet[int(b[i])%len(Alphabet)]
	}
	return string(b[:])
}
