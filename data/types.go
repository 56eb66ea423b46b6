package data

import (
	"fmt"
	"time"
)

// User is an Arbor account. One user may sign in through several providers
// (see Identity).
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email,omitempty"`
	Name      string    `json:"name,omitempty"`
	Login     string    `json:"login,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// Disabled is set by an operator (arbor users disable): every session,
	// CLI login and worker of the user stops, and sign-in is refused with
	// account_disabled, until an operator enables the user again.
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`
	DisabledBy     string    `json:"disabled_by,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`

	// Memberships are the user's groups as the login providers last told
	// them (package service/membership keeps them fresh).
	Memberships Memberships `json:"memberships,omitzero"`
}

// Memberships are a user's groups at the login providers, as last fetched.
type Memberships struct {
	// Groups are "<provider>:<group>" names (github:vintner,
	// github:vintner/platform, gitlab:grp/sub, google:example.com), sorted.
	Groups []string `json:"groups,omitempty"`
	// Restricted are groups the provider hid from Arbor, such as a GitHub
	// organisation that restricts OAuth app access and has not approved
	// Arbor's app; "<provider>:<group>", sorted.
	Restricted []string `json:"restricted,omitempty"`
	// CheckedAt is when every identity's groups were last fetched
	// successfully.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// FailingSince is when the providers first failed to answer since the
	// last success (zero: the last fetch succeeded). The last known Groups
	// stand for the grace period after it.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// LastError says, for operators, why the last fetch failed.
	LastError string `json:"last_error,omitempty"`
}

// Identity links a login provider's account (Provider, Subject) to a User.
type Identity struct {
	Provider      string    `json:"provider"`
	Subject       string    `json:"subject"`
	UserID        string    `json:"user_id"`
	Login         string    `json:"login,omitempty"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	LastLoginAt   time.Time `json:"last_login_at,omitzero"`

	// Grant is the sign-in's own OAuth grant (access and refresh token),
	// sealed (package seal) and bound to (Provider, Subject) by
	// IdentityAAD, kept only when the policy needs this provider's groups:
	// service/membership re-reads the groups with it and refreshes it like
	// a Git connection. Nil: none kept.
	Grant []byte `json:"grant,omitempty"`
	// GrantExpiresAt is when Grant's access token expires (zero: never).
	GrantExpiresAt time.Time `json:"grant_expires_at,omitzero"`
}

// IdentityAAD is the additional authenticated data that binds an
// identity's sealed grant to its row.
func IdentityAAD(provider, subject string) []byte {
	return fmt.Appendf(nil, "arbor/identity-grant/v1\x00%s\x00%s", provider, subject)
}

// Session is a signed-in browser. The cookie holds a short-lived JWT naming
// the session; the session record decides whether it is still alive.
type Session struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	// ExpiresAt is when the record stops being valid (the earlier of the
	// idle and the absolute limit, as computed by the gateway).
	ExpiresAt time.Time `json:"expires_at"`
	UserAgent string    `json:"user_agent,omitempty"`
	IP        string    `json:"ip,omitempty"`
}

// OAuthState is the server side of one OAuth authorization request.
type OAuthState struct {
	// ID is the state value sent to the provider (or its hash); the web
	// sign-in stores only "spent:"+id markers (see OAuthStates).
	ID       string `json:"id"`
	Provider string `json:"provider"`
	// Purpose says what the callback does: "login", "link" or "connect".
	Purpose string `json:"purpose"`
	// UserID is the signed-in user for "link" and "connect".
	UserID string `json:"user_id,omitempty"`
	// Binding is a hash of the browser-binding cookie set with the request.
	Binding      string    `json:"binding,omitempty"`
	PKCEVerifier string    `json:"pkce_verifier,omitempty"`
	RedirectURI  string    `json:"redirect_uri,omitempty"`
	ReturnTo     string    `json:"return_to,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Device code kinds.
const (
	DeviceKindCLI     = "cli"     // the Grape flow: device code + 6-character verification code
	DeviceKindRFC8628 = "rfc8628" // standard device authorization grant
)

// Device code states.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
	DeviceBurned   = "burned"
)

// DeviceCode is one device authorisation in progress.
type DeviceCode struct {
	Code     string `json:"code"`
	Kind     string `json:"kind"`
	UserCode string `json:"user_code,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// ClientInfo describes the requesting machine as the client announced it
	// (hostname, OS, CLI version); shown on the approval page.
	ClientInfo    map[string]string `json:"client_info,omitempty"`
	CodeChallenge string            `json:"code_challenge,omitempty"`
	Scope         string            `json:"scope,omitempty"`
	State         string            `json:"state"`
	UserID        string            `json:"user_id,omitempty"`
	// VerificationHash is a keyed hash of the verification code shown to
	// the user after approval; the code itself is never stored.
	VerificationHash string    `json:"verification_hash,omitempty"`
	FailedAttempts   int       `json:"failed_attempts,omitempty"`
	Interval         int       `json:"interval,omitempty"`
	LastPolledAt     time.Time `json:"last_polled_at,omitzero"`
	ApprovedAt       time.Time `json:"approved_at,omitzero"`
	ConsumedAt       time.Time `json:"consumed_at,omitzero"`
	CreatedAt        time.Time `json:"created_at"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// RefreshFamily is one CLI login: every refresh token minted from it shares
// the family, so reuse of a rotated token can revoke them all.
type RefreshFamily struct {
	ID       string `json:"id"`
	UserID   string `json:"user_id"`
	ClientID string `json:"client_id,omitempty"`
	// ClientInfo describes the machine that logged in.
	ClientInfo map[string]string `json:"client_info,omitempty"`
	// CurrentJTI is the jti of the only refresh token that is valid now.
	CurrentJTI string `json:"current_jti"`
	// PreviousJTI and RotatedAt allow a short grace window for a response
	// lost on the network.
	PreviousJTI  string    `json:"previous_jti,omitempty"`
	RotatedAt    time.Time `json:"rotated_at,omitzero"`
	Generation   int       `json:"generation"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	LastUsedAt   time.Time `json:"last_used_at,omitzero"`
	ExpiresAt    time.Time `json:"expires_at"`
	// Scope is what the login's tokens may do: space-separated names of
	// package gateway/authz/scope, kept so that a refresh mints the same. ""
	// for a login made before scopes existed (it counts as every scope).
	Scope string `json:"scope,omitempty"`
}

// Worker is a registered Tendril worker.
type Worker struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	// TokenHash is the SHA-256 of the worker's token; the token itself is
	// never stored.
	TokenHash  []byte    `json:"token_hash"`
	CreatedAt  time.Time `json:"created_at"`
	RotatedAt  time.Time `json:"rotated_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	LastAddr   string    `json:"last_addr,omitempty"`
	// Scopes, when not empty, make the record a repository credential
	// rather than a Tendril worker: what it may do through Arbor's Git
	// proxy ("git:read", "git:write"; package service/workers). Empty for
	// a worker, and for every record stored before issue 22.
	Scopes []string `json:"scopes,omitempty"`
	// Repos limits a repository credential to the repositories that match
	// one of these patterns (service/workers.MatchRepo); empty allows every
	// repository the owner's connection can read.
	Repos []string `json:"repos,omitempty"`
}

// Connection states.
const (
	ConnectionActive         = "active"
	ConnectionNeedsReconnect = "needs_reconnect"
)

// Connection is a user's Git provider connection. The tokens are in Sealed,
// an AES-256-GCM envelope (package seal) bound to (UserID, Provider) by
// ConnectionAAD.
type Connection struct {
	UserID       string   `json:"user_id"`
	Provider     string   `json:"provider"`
	AccountID    string   `json:"account_id,omitempty"`
	AccountLogin string   `json:"account_login,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Sealed       []byte   `json:"sealed"`
	// TokenExpiresAt is when the access token expires (zero: never).
	TokenExpiresAt time.Time `json:"token_expires_at,omitzero"`
	Status         string    `json:"status"`
	StatusReason   string    `json:"status_reason,omitempty"`
	LastRefreshAt  time.Time `json:"last_refresh_at,omitzero"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Version is maintained by the store: 1 on create, +1 on every update.
	Version uint64 `json:"version"`
}

// ConnectionAAD is the additional authenticated data that binds a sealed
// connection to its row, so a ciphertext moved to another user's or
// provider's row fails to open.
func ConnectionAAD(userID, provider string) []byte {
	return fmt.Appendf(nil, "arbor/connection/v1\x00%s\x00%s", userID, provider)
}

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	// Seq is assigned by the store, strictly increasing.
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	// Actor is who acted: a user id, "worker:<id>", "system".
	Actor string `json:"actor,omitempty"`
	// UserID is whose data the event concerns (for per-user listing).
	UserID    string            `json:"user_id,omitempty"`
	Target    string            `json:"target,omitempty"`
	Outcome   string            `json:"outcome,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	IP        string            `json:"ip,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

// AuditQuery selects audit events. The conditions combine: an event is
// returned when it meets every one that is set.
//
// Seq bounds and UserID narrow what a backend reads; Action and Since are
// filters applied to the events read, so a query that sets them may read
// (not return) many more events than it returns. The backends document the
// cost (ListAudit in each).
type AuditQuery struct {
	// AfterSeq returns only events with Seq > AfterSeq.
	AfterSeq uint64
	// BeforeSeq, when not 0, returns only events with Seq < BeforeSeq: with
	// Newest, pass the Seq of the last (oldest) event of one page to get
	// the next page back in time.
	BeforeSeq uint64
	// UserID, when set, returns only events about that user.
	UserID string
	// Action, when set, returns only events with that exact Action, or, if
	// it ends in ".", those whose Action starts with it ("user." matches
	// "user.disabled").
	Action string
	// Since, when not zero, returns only events with Time at or after it.
	// Events normally carry the time they were appended, but one may carry
	// a Time of its own, so Since is a filter, not a bound on Seq.
	Since time.Time
	// Newest returns events in descending Seq order, newest first; with
	// Limit, the newest Limit matching events. Otherwise events come in
	// ascending Seq order and Limit keeps the oldest.
	Newest bool
	// Limit caps the result (0: 1000).
	Limit int
}
