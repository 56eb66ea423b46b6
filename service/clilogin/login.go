package clilogin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/printable"
	"github.com/vintner/arbor/internal/scopeset"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

// validDeviceCode accepts what a CLI may pick: 16 to 128 characters of
// letters, digits and '-' (a UUID is 36).
func validDeviceCode(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validChallenge accepts a base64url SHA-256 (43 characters).
func validChallenge(s string) bool {
	if s == "" {
		return true
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// StartRequest is a CLI's announcement: its device code, challenge and a
// description of the machine, shown on the approval page as reported by
// the device.
type StartRequest struct {
	DeviceCode    string
	CodeChallenge string
	ClientInfo    map[string]string
}

// Start stores a new pending device code, within the caps on pending
// requests. Errors: ErrInvalidDeviceCode, ErrInvalidChallenge,
// ErrDeviceCodeExists, *BusyError, *StoreError.
func (s *Service) Start(ctx context.Context, from From, req StartRequest) error {
	if !validDeviceCode(req.DeviceCode) {
		return ErrInvalidDeviceCode
	}
	if !validChallenge(req.CodeChallenge) {
		return ErrInvalidChallenge
	}
	info := map[string]string{}
	for k, v := range req.ClientInfo {
		if len(info) >= 8 {
			break
		}
		if k = printable.Clean(k, 32); k != "" && !strings.HasPrefix(k, infoPrefix) {
			info[k] = printable.Clean(v, 128)
		}
	}
	info = machineInfo(from, info)
	now := s.opts.Now().UTC()
	expires := now.Add(s.opts.FlowTTL + pendingRetention)
	took, err := s.takeSlot(ctx, from.Addr, req.DeviceCode, now, expires)
	if err != nil {
		return err
	}
	err = s.store.CreateDeviceCode(ctx, data.DeviceCode{
		Code: req.DeviceCode, Kind: data.DeviceKindCLI, ClientID: GrapeClientID, ClientInfo: info,
		CodeChallenge: req.CodeChallenge, State: data.DevicePending,
		CreatedAt: now, ExpiresAt: expires,
	})
	switch {
	case err != nil && took:
		s.pending.release(req.DeviceCode)
	case err == nil:
		s.pending.stored(req.DeviceCode)
	}
	if errors.Is(err, data.ErrAlreadyExists) {
		return ErrDeviceCodeExists
	}
	if err != nil {
		return storeErr("store the login request", err)
	}
	return nil
}

// Request is a pending request as an approval page shows it.
type Request struct {
	DeviceCode string
	// ClientID and ClientName are the registered client's (RFC 8628).
	ClientID, ClientName string
	// UserCode is the RFC 8628 user code as XXXX-XXXX.
	UserCode  string
	Machine   Machine
	Scopes    scopeset.Set
	Requested time.Time
	// Expires is when the request expires unapproved.
	Expires time.Time
}

// Open binds the pending Grape request of deviceCode to userID, the first
// signed-in user who opens its login page, and returns what the page
// shows. Errors: ErrInvalidDeviceCode; ErrUnknownDevice (not announced:
// the caller may Start it); ErrNotCLI, ErrExpired; ErrUsed, ErrBurned or
// ErrDenied (finished); ErrOtherUser; *StoreError.
func (s *Service) Open(ctx context.Context, userID, deviceCode string) (Request, error) {
	if !validDeviceCode(deviceCode) {
		return Request{}, ErrInvalidDeviceCode
	}
	d, err := s.store.GetDeviceCode(ctx, deviceCode)
	switch {
	case errors.Is(err, data.ErrNotFound):
		return Request{}, ErrUnknownDevice
	case err != nil:
		return Request{}, storeErr("read the login request", err)
	}
	now := s.opts.Now()
	switch {
	case d.Kind != data.DeviceKindCLI:
		return Request{}, ErrNotCLI
	case s.expired(d, now):
		return Request{}, ErrExpired
	case !d.ConsumedAt.IsZero():
		return Request{}, ErrUsed
	case d.State == data.DeviceBurned:
		return Request{}, ErrBurned
	case d.State == data.DeviceDenied:
		return Request{}, ErrDenied
	case d.UserID != "" && d.UserID != userID:
		return Request{}, ErrOtherUser
	}
	if d.UserID == "" {
		_, err = s.store.UpdateDeviceCode(ctx, deviceCode, func(cur data.DeviceCode) (data.DeviceCode, error) {
			if cur.UserID != "" && cur.UserID != userID {
				return cur, ErrOtherUser
			}
			cur.UserID = userID
			return cur, nil
		})
		if errors.Is(err, ErrOtherUser) {
			return Request{}, ErrOtherUser
		}
		if err != nil {
			return Request{}, storeErr("update the login request", err)
		}
	}
	return Request{
		DeviceCode: d.Code, ClientID: d.ClientID, Machine: machineOf(d.ClientInfo), Scopes: scopeset.All,
		Requested: d.CreatedAt, Expires: d.CreatedAt.Add(s.opts.FlowTTL),
	}, nil
}

// newCode returns a verification code: CodeLength symbols of CodeAlphabet,
// each from one random byte. 256 is a multiple of 32, so b%32 is uniform.
func newCode() (string, error) {
	var b [CodeLength]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	out := make([]byte, CodeLength)
	for i, x := range b {
		out[i] = CodeAlphabet[int(x)%len(CodeAlphabet)]
	}
	return string(out), nil
}

func (s *Service) codeHash(deviceCode, code string) string {
	m := hmac.New(sha256.New, s.opts.CodeKey)
	m.Write([]byte("arbor-cli-code\x00" + deviceCode + "\x00" + NormalizeCode(code)))
	return hex.EncodeToString(m.Sum(nil))
}

// Approve mints the verification code of deviceCode after userID pressed
// Approve, and returns it with when the request expires. Approving again
// (a reload) replaces the code: it is shown only once and not stored in
// the clear. Errors: ErrUnknownDevice, ErrOtherUser, ErrExpired; ErrUsed,
// ErrBurned or ErrDenied (finished); *StoreError.
func (s *Service) Approve(ctx context.Context, from From, userID, deviceCode string) (code string, expires time.Time, err error) {
	code, err = newCode()
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.opts.Now().UTC()
	d, err := s.store.UpdateDeviceCode(ctx, deviceCode, func(cur data.DeviceCode) (data.DeviceCode, error) {
		switch {
		case cur.Kind != data.DeviceKindCLI:
			return cur, ErrUnknownDevice
		case cur.UserID != userID:
			return cur, ErrOtherUser
		case s.expired(cur, now):
			return cur, ErrExpired
		case cur.State == data.DeviceBurned:
			return cur, ErrBurned
		case cur.State == data.DeviceDenied:
			return cur, ErrDenied
		}
		cur.State, cur.ApprovedAt = data.DeviceApproved, now
		cur.VerificationHash = s.codeHash(cur.Code, code)
		// Approved by a signed-in user: kept past the flow so that a late
		// exchange is told "expired", and no longer pending.
		cur.ExpiresAt = cur.CreatedAt.Add(s.opts.FlowTTL + retention)
		return cur, nil
	})
	if err == nil {
		s.pending.release(d.Code)
	}
	switch {
	case errors.Is(err, data.ErrNotFound), errors.Is(err, ErrUnknownDevice):
		return "", time.Time{}, ErrUnknownDevice
	case errors.Is(err, data.ErrConsumed):
		return "", time.Time{}, ErrUsed
	case err != nil:
		if e := firstOf(err, ErrOtherUser, ErrExpired, ErrBurned, ErrDenied); e != nil {
			return "", time.Time{}, e
		}
		return "", time.Time{}, storeErr("record the approval", err)
	}
	s.audit(ctx, from, data.AuditEvent{Action: "cli.approve", Actor: userID, UserID: userID, Target: d.ClientID, Outcome: "ok"})
	return code, d.CreatedAt.Add(s.opts.FlowTTL), nil
}

// Deny refuses deviceCode for userID: nothing is granted. Errors:
// ErrOtherUser, ErrUnknownDevice, ErrUsed (completed: refusing it now
// changes nothing), *StoreError.
func (s *Service) Deny(ctx context.Context, userID, deviceCode string) error {
	_, err := s.store.UpdateDeviceCode(ctx, deviceCode, func(cur data.DeviceCode) (data.DeviceCode, error) {
		if cur.UserID != userID {
			return cur, ErrOtherUser
		}
		cur.State, cur.VerificationHash = data.DeviceDenied, ""
		return cur, nil
	})
	if err == nil {
		s.pending.release(deviceCode)
	}
	switch {
	case errors.Is(err, ErrOtherUser):
		return ErrOtherUser
	case errors.Is(err, data.ErrNotFound):
		return ErrUnknownDevice
	case errors.Is(err, data.ErrConsumed):
		return ErrUsed
	case err != nil:
		return storeErr("record the refusal", err)
	}
	return nil
}

// Exchange trades an approved device code, its verification code and the
// verifier of its challenge for tokens. Without a code (a client polling)
// it answers from a read, counts no attempt and writes nothing. Errors:
// ErrUnknownDevice, ErrUsed, ErrBurned, ErrDenied, ErrExpired,
// ErrWrongCode, ErrWrongVerifier, ErrClientGone, *StoreError.
func (s *Service) Exchange(ctx context.Context, from From, deviceCode, code, verifier string) (Tokens, error) {
	now := s.opts.Now()
	code = NormalizeCode(code)
	if code == "" {
		d, err := s.store.GetDeviceCode(ctx, deviceCode)
		switch {
		case errors.Is(err, data.ErrNotFound), errors.Is(err, data.ErrInvalid):
			return Tokens{}, ErrUnknownDevice
		case err != nil:
			return Tokens{}, storeErr("read the login request", err)
		}
		if err := s.deviceState(d, now); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, ErrWrongCode
	}
	// The code is checked, and a wrong one counted, in one atomic update:
	// parallel guesses are serialised by the store, so no more than
	// MaxAttempts codes are ever evaluated against a device code. A right
	// code changes nothing here (errCodeRight aborts the update).
	var (
		verdict, state error
		burned         bool
		hash           string
	)
	d, err := s.store.UpdateDeviceCode(ctx, deviceCode, func(cur data.DeviceCode) (data.DeviceCode, error) {
		verdict, state, burned = nil, nil, false // fn may run more than once
		if state = s.deviceState(cur, now); state != nil {
			return cur, state
		}
		hash = s.codeHash(cur.Code, code)
		verifierOK := cur.CodeChallenge == "" || s256(verifier) == cur.CodeChallenge
		codeOK := cur.State == data.DeviceApproved && cur.VerificationHash != "" &&
			subtle.ConstantTimeCompare([]byte(hash), []byte(cur.VerificationHash)) == 1
		if codeOK && verifierOK {
			return cur, errCodeRight
		}
		cur.FailedAttempts++
		if cur.FailedAttempts >= s.opts.MaxAttempts {
			cur.State, cur.VerificationHash, burned = data.DeviceBurned, "", true
		}
		verdict = ErrWrongVerifier
		if !codeOK {
			verdict = ErrWrongCode
		}
		return cur, nil
	})
	switch {
	case errors.Is(err, errCodeRight):
	case err == nil:
		if burned {
			s.audit(ctx, from, data.AuditEvent{Action: "cli.device_code_burned", UserID: d.UserID, Target: d.ClientID, Outcome: "burned"})
			s.logger(from).Warn("a CLI login request was burned after too many wrong codes", "user_id", d.UserID)
		}
		return Tokens{}, verdict
	case errors.Is(err, data.ErrConsumed):
		return Tokens{}, ErrUsed
	case state != nil && errors.Is(err, state):
		return Tokens{}, state
	case errors.Is(err, data.ErrNotFound), errors.Is(err, data.ErrInvalid):
		return Tokens{}, ErrUnknownDevice
	default:
		return Tokens{}, storeErr("read the login request", err)
	}
	// Exactly one exchange wins; the check runs again on the current record.
	state = nil
	d, err = s.store.ConsumeDeviceCode(ctx, deviceCode, func(cur data.DeviceCode) error {
		if state = s.deviceState(cur, now); state != nil {
			return state
		}
		if cur.State != data.DeviceApproved || subtle.ConstantTimeCompare([]byte(hash), []byte(cur.VerificationHash)) != 1 {
			state = ErrWrongCode
			return state
		}
		return nil
	})
	switch {
	case errors.Is(err, data.ErrConsumed):
		return Tokens{}, ErrUsed
	case state != nil && errors.Is(err, state):
		return Tokens{}, state
	case errors.Is(err, data.ErrNotFound):
		return Tokens{}, ErrUnknownDevice
	case err != nil:
		return Tokens{}, storeErr("complete the login", err)
	}
	s.pending.release(deviceCode)
	user, err := s.store.GetUser(ctx, d.UserID)
	if err != nil {
		return Tokens{}, storeErr("read the user", err)
	}
	fid, err := clitoken.NewID()
	if err != nil {
		return Tokens{}, err
	}
	jti, err := clitoken.NewID()
	if err != nil {
		return Tokens{}, err
	}
	nowUTC := now.UTC()
	f := data.RefreshFamily{
		ID: fid, UserID: user.ID, ClientID: d.ClientID, ClientInfo: d.ClientInfo,
		CurrentJTI: jti, Generation: 1, CreatedAt: nowUTC, LastUsedAt: nowUTC,
		ExpiresAt: nowUTC.Add(s.opts.Tokens.RefreshTTL()), Scope: scopeset.All.String(),
	}
	if err := s.store.CreateRefreshFamily(ctx, f); err != nil {
		return Tokens{}, storeErr("record the login", err)
	}
	s.audit(ctx, from, data.AuditEvent{Action: "cli.login", Actor: user.ID, UserID: user.ID, Target: d.ClientID, Outcome: "ok",
		Details: map[string]string{"family": fid}})
	return s.tokens(user, f, jti)
}

// deviceState refuses Grape device codes that cannot be exchanged any more.
func (s *Service) deviceState(d data.DeviceCode, now time.Time) error {
	switch {
	case d.Kind != data.DeviceKindCLI:
		return ErrUnknownDevice
	case !d.ConsumedAt.IsZero():
		return ErrUsed
	case d.State == data.DeviceBurned:
		return ErrBurned
	case d.State == data.DeviceDenied:
		return ErrDenied
	case s.expired(d, now):
		return ErrExpired
	}
	return nil
}

// errCodeRight ends the exchange's checking update without a write: the
// code and verifier are right, and the consume comes next.
var errCodeRight = errors.New("clilogin: the verification code is right")

func s256(verifier string) string {
	if verifier == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Tokens are what a successful exchange or refresh hands out.
type Tokens struct {
	Access, Refresh string
	// ExpiresIn and RefreshExpiresIn are the tokens' lifetimes from now.
	ExpiresIn, RefreshExpiresIn time.Duration
	Scopes                      scopeset.Set
	User                        data.User
}

// tokens mints an access token and the refresh token jti of family f.
func (s *Service) tokens(u data.User, f data.RefreshFamily, jti string) (Tokens, error) {
	granted := s.grantedScopes(f)
	if granted == 0 {
		return Tokens{}, ErrClientGone
	}
	sub := clitoken.Subject{UserID: u.ID, Email: u.Email, Login: u.Login, Scopes: granted}
	ajti, err := clitoken.NewID()
	if err != nil {
		return Tokens{}, err
	}
	access, aexp, err := s.opts.Tokens.Mint(clitoken.TypeAccess, sub, f.ID, ajti)
	if err != nil {
		return Tokens{}, err
	}
	refresh, _, err := s.opts.Tokens.Mint(clitoken.TypeRefresh, sub, f.ID, jti)
	if err != nil {
		return Tokens{}, err
	}
	now := s.opts.Now()
	return Tokens{
		Access: access, Refresh: refresh,
		ExpiresIn:        aexp.Sub(now.Truncate(time.Second)),
		RefreshExpiresIn: f.ExpiresAt.Sub(now),
		Scopes:           granted, User: u,
	}, nil
}
