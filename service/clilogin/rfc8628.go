package clilogin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/internal/scopeset"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

// RFC 8628, the OAuth 2.0 Device Authorization Grant, for stock OAuth
// clients (golang.org/x/oauth2's DeviceAuth, gh-style tools). It shares the
// refresh families, tokens and approval rules of the Grape flow; only the
// wire format differs (gateway/api).
const (
	// UserCodeAlphabet is RFC 8628's suggestion: 20 consonants, no vowels
	// (no words) and nothing easily confused.
	UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
	// DefaultInterval is the polling interval clients are told, seconds.
	DefaultInterval = 5
)

func newUserCode() (string, error) {
	// 256 is not a multiple of 20: reject bytes >= 240 to stay uniform.
	out := make([]byte, 0, userCodeLength)
	var buf [16]byte
	for len(out) < userCodeLength {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b < 240 && len(out) < userCodeLength {
				out = append(out, UserCodeAlphabet[int(b)%len(UserCodeAlphabet)])
			}
		}
	}
	return string(out), nil
}

// formatUserCode shows a stored user code as XXXX-XXXX.
func formatUserCode(s string) string {
	if len(s) != userCodeLength {
		return s
	}
	return s[:4] + "-" + s[4:]
}

// DeviceAuthorization is a started RFC 8628 request.
type DeviceAuthorization struct {
	DeviceCode string
	// UserCode is formatted XXXX-XXXX.
	UserCode string
	Scopes   scopeset.Set
	// ExpiresIn is the flow's lifetime; Interval the polling interval.
	ExpiresIn time.Duration
	Interval  int
}

// DeviceAuthorize starts an RFC 8628 request of the registered client
// clientID for the scopes rawScope names (empty: all the client may
// have). An unregistered client costs a map lookup: nothing is stored or
// counted. Errors: ErrUnknownClient, *ScopeError, *BusyError, *StoreError.
func (s *Service) DeviceAuthorize(ctx context.Context, from From, clientID, rawScope string) (DeviceAuthorization, error) {
	client, ok := s.clients[clientID]
	if !ok {
		return DeviceAuthorization{}, ErrUnknownClient
	}
	granted := client.Scopes
	if rawScope != "" {
		asked, err := scopeset.Parse(rawScope)
		if err != nil || asked == 0 {
			return DeviceAuthorization{}, &ScopeError{Unknown: true}
		}
		if !client.Scopes.Has(asked) {
			return DeviceAuthorization{}, &ScopeError{Allowed: client.Scopes}
		}
		granted = asked
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return DeviceAuthorization{}, err
	}
	dc := base64.RawURLEncoding.EncodeToString(raw)
	now := s.opts.Now().UTC()
	expires := now.Add(s.opts.FlowTTL + pendingRetention)
	if _, err := s.takeSlot(ctx, from.Addr, dc, now, expires); err != nil {
		return DeviceAuthorization{}, err
	}
	var uc string
	for attempt := 0; ; attempt++ {
		var err error
		if uc, err = newUserCode(); err != nil {
			return DeviceAuthorization{}, err
		}
		err = s.store.CreateDeviceCode(ctx, data.DeviceCode{
			Code: dc, Kind: data.DeviceKindRFC8628, UserCode: uc, ClientID: client.ID, ClientInfo: machineInfo(from, nil),
			Scope: granted.String(), State: data.DevicePending, Interval: DefaultInterval,
			CreatedAt: now, ExpiresAt: expires,
		})
		if err == nil {
			s.pending.stored(dc)
			break
		}
		if !errors.Is(err, data.ErrAlreadyExists) || attempt == 3 {
			s.pending.release(dc)
			return DeviceAuthorization{}, storeErr("store the device authorization", err)
		}
	}
	return DeviceAuthorization{
		DeviceCode: dc, UserCode: formatUserCode(uc), Scopes: granted,
		ExpiresIn: s.opts.FlowTTL, Interval: DefaultInterval,
	}, nil
}

// LookUp finds the pending request of a typed user code, for userID to
// decide on. Everything it returns comes from the configuration or from
// what Arbor saw, except Machine.UserAgent, the device's own claim.
// Errors: ErrNotUserCode, ErrUnknownUserCode.
func (s *Service) LookUp(ctx context.Context, userCode string) (Request, error) {
	uc := NormalizeCode(userCode)
	if len(uc) != userCodeLength {
		return Request{}, ErrNotUserCode
	}
	d, err := s.store.GetDeviceCodeByUserCode(ctx, uc)
	client, registered := s.clients[d.ClientID]
	if err != nil || d.Kind != data.DeviceKindRFC8628 || s.expired(d, s.opts.Now()) || d.State != data.DevicePending || !registered {
		return Request{}, ErrUnknownUserCode
	}
	return Request{
		DeviceCode: d.Code, ClientID: client.ID, ClientName: client.Name, UserCode: formatUserCode(uc),
		Machine: machineOf(d.ClientInfo), Scopes: scopeset.ParseKnown(d.Scope) & client.Scopes,
		Requested: d.CreatedAt, Expires: d.CreatedAt.Add(s.opts.FlowTTL),
	}, nil
}

// Decide approves (approve) or refuses the pending request of userCode
// for userID. Errors: ErrUnknownUserCode, ErrFinished.
func (s *Service) Decide(ctx context.Context, from From, userID, userCode string, approve bool) error {
	d, err := s.store.GetDeviceCodeByUserCode(ctx, NormalizeCode(userCode))
	if _, registered := s.clients[d.ClientID]; err != nil || d.Kind != data.DeviceKindRFC8628 || !registered {
		return ErrUnknownUserCode
	}
	now := s.opts.Now().UTC()
	_, err = s.store.UpdateDeviceCode(ctx, d.Code, func(cur data.DeviceCode) (data.DeviceCode, error) {
		if cur.State != data.DevicePending || s.expired(cur, now) {
			return cur, ErrFinished
		}
		if approve {
			cur.State, cur.UserID, cur.ApprovedAt = data.DeviceApproved, userID, now
			// Kept past the flow so that a late poll is told expired_token.
			cur.ExpiresAt = cur.CreatedAt.Add(s.opts.FlowTTL + retention)
		} else {
			cur.State = data.DeviceDenied
		}
		return cur, nil
	})
	if err != nil {
		return ErrFinished
	}
	s.pending.release(d.Code)
	if approve {
		s.audit(ctx, from, data.AuditEvent{Action: "device.approve", Actor: userID, UserID: userID, Target: d.ClientID, Outcome: "ok"})
	}
	return nil
}

// DeviceToken is the device code grant: the tokens of an approved request,
// once. clientID, if not empty, must be the request's. A poll of a pending
// request writes nothing: the interval bookkeeping is in memory. Errors:
// ErrUnknownDevice, ErrOtherClient, ErrUnknownClient (removed from the
// configuration since), ErrUsed, ErrExpired, ErrDenied, ErrSlowDown,
// ErrPending, ErrClientGone, *StoreError.
func (s *Service) DeviceToken(ctx context.Context, from From, clientID, deviceCode string) (Tokens, error) {
	now := s.opts.Now().UTC()
	d, err := s.store.GetDeviceCode(ctx, deviceCode)
	if err != nil || d.Kind != data.DeviceKindRFC8628 {
		return Tokens{}, ErrUnknownDevice
	}
	if clientID != "" && clientID != d.ClientID {
		return Tokens{}, ErrOtherClient
	}
	if _, ok := s.clients[d.ClientID]; !ok {
		// Registered when the request started, removed since.
		return Tokens{}, ErrUnknownClient
	}
	switch {
	case !d.ConsumedAt.IsZero():
		return Tokens{}, ErrUsed
	case s.expired(d, now):
		return Tokens{}, ErrExpired
	case d.State == data.DeviceDenied:
		return Tokens{}, ErrDenied
	case d.State == data.DevicePending:
		// A client polling faster than its interval is told to slow down,
		// and its interval grows by 5 s (RFC 8628 3.5).
		if s.pending.poll(deviceCode, now, d.CreatedAt.Add(s.opts.FlowTTL+pendingRetention)) {
			return Tokens{}, ErrSlowDown
		}
		return Tokens{}, ErrPending
	}
	d, err = s.store.ConsumeDeviceCode(ctx, deviceCode, func(cur data.DeviceCode) error {
		if cur.State != data.DeviceApproved || cur.UserID == "" {
			return ErrFinished
		}
		return nil
	})
	if err != nil {
		return Tokens{}, ErrUsed
	}
	s.pending.release(deviceCode)
	user, err := s.store.GetUser(ctx, d.UserID)
	if err != nil {
		return Tokens{}, storeErr("read the user", err)
	}
	fid, err1 := clitoken.NewID()
	jti, err2 := clitoken.NewID()
	if err := errors.Join(err1, err2); err != nil {
		return Tokens{}, err
	}
	info := map[string]string{"flow": flowRFC8628}
	for k, v := range d.ClientInfo {
		info[k] = v
	}
	f := data.RefreshFamily{
		ID: fid, UserID: user.ID, ClientID: d.ClientID, ClientInfo: info, Scope: d.Scope,
		CurrentJTI: jti, Generation: 1, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.opts.Tokens.RefreshTTL()),
	}
	if err := s.store.CreateRefreshFamily(ctx, f); err != nil {
		return Tokens{}, storeErr("record the login", err)
	}
	s.audit(ctx, from, data.AuditEvent{Action: "device.login", Actor: user.ID, UserID: user.ID, Target: d.ClientID, Outcome: "ok"})
	return s.tokens(user, f, jti)
}
