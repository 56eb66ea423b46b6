// Package clilogin is CLI login (Grape, and RFC 8628 device clients)
// without HTTP: the device code and verification code flow, the token
// exchange, rotating refresh with reuse detection, logout, bearer
// authentication of access tokens, the RFC 8628 device authorization
// grant and the registered device clients. It takes plain values and a
// context and answers with values and its own errors (errors.go); the
// HTTP layer (gateway/api's CLI, gateway/pages' CLI, authn.CLI) reads
// requests, maps those errors to answers in one place
// (gateway/api/answer.go) and renders pages and JSON. Apart, the
// flow's rules can be read and tested without a server, and no handler
// can skip one of them.
//
// # The flow and its defences
//
// The CLI picks a random device code (and may keep a PKCE-style verifier
// whose S256 challenge it sends along) and opens /cli/login in the browser.
// The signed-in user sees what asks for access and must press Approve (a
// CSRF-protected POST); only then does Arbor mint a 6-character
// verification code, bound to that device code and that user, and show it.
// The user types it in the terminal and the CLI exchanges device code,
// verification code and verifier for tokens.
//
//   - The verification code comes from crypto/rand over 32 symbols (no
//     0/O, 1/I), 30 bits; it is stored only as an HMAC, and the device
//     code burns after 5 wrong codes from anywhere, so guessing is hopeless
//     (5 tries in 10^9).
//   - The device code binds to the first signed-in user who opens it; no
//     other user can approve it.
//   - Each wrong code is counted in the same atomic store update that
//     checks it, so parallel guesses cannot evaluate more than 5 codes.
//   - Exactly one exchange succeeds (the store's atomic consume), within 10
//     minutes of the start.
//   - Anonymous starts are bounded (limits.go): a global and a per-address
//     cap on pending, unapproved requests, which live 10 minutes; polls
//     write nothing.
//   - Unknown, expired, burned and used device codes get distinct stable
//     errors; a wrong code never learns anything about the right one.
//
// # Refresh tokens
//
// Every login is a refresh-token family (data.RefreshFamily). A refresh
// rotates: the presented token must be the family's current one; it is
// replaced, and the one before it stays acceptable only for a short grace
// window (a response lost on the network). Presenting any older token is
// reuse, a sign that a token was stolen: the whole family is revoked and
// the event is audited. Access tokens name their family, and bearer
// authentication checks that the family is alive, so logout and reuse
// detection end access at once, not an hour later.
package clilogin

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/service/clilogin/clitoken"
)

// Defaults.
const (
	DefaultFlowTTL      = 10 * time.Minute
	DefaultMaxAttempts  = 5
	DefaultRefreshGrace = 10 * time.Second
	// retention keeps a device code record after its flow expired, so that
	// a late exchange is told "expired", not "unknown".
	retention = time.Hour
	// CodeAlphabet is the verification code's 32 symbols: no 0/O, 1/I.
	CodeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	CodeLength   = 6
)

// Store is what CLI login needs from the store.
type Store interface {
	data.Users
	data.DeviceCodes
	data.RefreshFamilies
	data.Audit
}

// Options configure CLI login.
type Options struct {
	// Tokens mints and verifies the CLI's tokens. Required.
	Tokens *clitoken.Signer
	// CodeKey keys the HMAC under which verification codes are stored
	// (32+ bytes; derive it from CLI_JWT_SECRET). Required.
	CodeKey []byte
	// FlowTTL is how long a request may wait for approval and exchange:
	// DefaultFlowTTL, and at most that.
	FlowTTL time.Duration
	// MaxAttempts is the number of wrong codes that burn a device code.
	// Default DefaultMaxAttempts.
	MaxAttempts int
	// RefreshGrace is how long the refresh token before the current one is
	// still accepted (a lost response). Zero: none.
	RefreshGrace time.Duration
	// MaxPendingDevices caps the pending, unapproved device requests this
	// process created (all flows); MaxPendingPerAddress caps them per client
	// address. Defaults DefaultMaxPendingDevices and
	// DefaultMaxPendingPerAddress. See limits.go.
	MaxPendingDevices    int
	MaxPendingPerAddress int
	// DeviceClients are the RFC 8628 clients DeviceAuthorize accepts
	// (clients.go); none by default.
	DeviceClients []DeviceClient
	Now           func() time.Time
	Logger        *slog.Logger
}

// Service is CLI login. Safe for concurrent use.
type Service struct {
	store   Store
	opts    Options
	pending *pendingSlots
	clients map[string]DeviceClient
}

// New checks opts.
func New(store Store, opts Options) (*Service, error) {
	if store == nil || opts.Tokens == nil {
		return nil, errors.New("clilogin: the store and Options.Tokens are required")
	}
	if len(opts.CodeKey) < 32 {
		return nil, errors.New("clilogin: Options.CodeKey must be at least 32 bytes")
	}
	if opts.FlowTTL <= 0 {
		opts.FlowTTL = DefaultFlowTTL
	}
	if opts.FlowTTL > DefaultFlowTTL {
		return nil, errors.New("clilogin: Options.FlowTTL may not exceed 10 minutes (unapproved requests live at most that long)")
	}
	if opts.MaxPendingDevices <= 0 {
		opts.MaxPendingDevices = DefaultMaxPendingDevices
	}
	if opts.MaxPendingPerAddress <= 0 {
		opts.MaxPendingPerAddress = DefaultMaxPendingPerAddress
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RefreshGrace < 0 {
		opts.RefreshGrace = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	clients, err := newClientRegistry(opts.DeviceClients)
	if err != nil {
		return nil, err
	}
	return &Service{store: store, opts: opts, pending: newPendingSlots(opts.MaxPendingDevices, opts.MaxPendingPerAddress), clients: clients}, nil
}

// FlowTTL is how long a request lives unapproved (Options.FlowTTL).
func (s *Service) FlowTTL() time.Duration { return s.opts.FlowTTL }

// From is who sent a request, as the HTTP layer saw it: for the
// pending-request caps, the approval page, the audit trail and the logs.
type From struct {
	// Addr is the client's address (through the trusted proxies).
	Addr string
	// UserAgent is what the client said it is (the device's own claim).
	UserAgent string
	// RequestID is the gateway's request id.
	RequestID string
}

func (s *Service) logger(from From) *slog.Logger {
	if from.RequestID == "" {
		return s.opts.Logger
	}
	return s.opts.Logger.With(slog.String("request_id", from.RequestID))
}

func (s *Service) audit(ctx context.Context, from From, e data.AuditEvent) {
	e.RequestID, e.IP = from.RequestID, from.Addr
	if _, err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.logger(from).Error("writing an audit event failed", "action", e.Action, "err", err)
	}
}

func (s *Service) expired(d data.DeviceCode, now time.Time) bool {
	return !now.Before(d.CreatedAt.Add(s.opts.FlowTTL))
}

// NormalizeCode upper-cases a typed code and drops spaces and dashes.
func NormalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}
