// Package sealedgrant is an OAuth grant as Arbor keeps it at rest: the
// tokens of a Git connection (service/connections) and the sign-in's own
// grant kept to re-read a user's memberships (service/membership). Both
// keep the same fields, sealed by package data/seal and bound to their row
// by additional authenticated data (data.ConnectionAAD, data.IdentityAAD),
// so that a ciphertext moved to another row fails to open.
//
// The JSON field names are short and fixed: they are inside envelopes
// already stored, so they never change.
package sealedgrant

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vintner/arbor/sdk/abi"
)

// Sealer seals and opens envelopes (*seal.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(envelope, aad []byte) ([]byte, error)
}

// Grant is the sealed part of a grant.
type Grant struct {
	AccessToken      string `json:"a"`
	RefreshToken     string `json:"r,omitempty"`
	TokenType        string `json:"t,omitempty"`
	ExpiresAt        int64  `json:"e,omitempty"`  // Unix seconds; 0: never
	RefreshExpiresAt int64  `json:"re,omitempty"` // Unix seconds; 0: unknown
}

// Expiry is when the access token expires (zero: never).
func (g Grant) Expiry() time.Time {
	if g.ExpiresAt == 0 {
		return time.Time{}
	}
	return time.Unix(g.ExpiresAt, 0).UTC()
}

// From is tok as received at now. prev is the grant tok replaces (zero
// for a new one): what a refresh did not rotate (the refresh token, the
// token type, the refresh token's expiry) is kept from it.
func From(tok *abi.Token, now time.Time, prev Grant) Grant {
	g := Grant{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, RefreshExpiresAt: prev.RefreshExpiresAt}
	if g.RefreshToken == "" {
		g.RefreshToken = prev.RefreshToken // not rotated: keep using it
	}
	if g.TokenType == "" {
		g.TokenType = prev.TokenType
	}
	if tok.ExpiresIn > 0 {
		g.ExpiresAt = now.Add(time.Duration(tok.ExpiresIn) * time.Second).Unix()
	}
	if tok.RefreshExpiresIn > 0 {
		g.RefreshExpiresAt = now.Add(time.Duration(tok.RefreshExpiresIn) * time.Second).Unix()
	}
	return g
}

// Seal seals g for the row aad names.
func Seal(s Sealer, g Grant, aad []byte) ([]byte, error) {
	raw, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	return s.Seal(raw, aad)
}

// Open opens an envelope Seal made for the row aad names. The error says
// only what failed, never what the envelope holds; callers add whose row
// it was.
func Open(s Sealer, envelope, aad []byte) (Grant, error) {
	raw, err := s.Open(envelope, aad)
	if err != nil {
		return Grant{}, fmt.Errorf("opening: %w", err)
	}
	var g Grant
	if err := json.Unmarshal(raw, &g); err != nil {
		return Grant{}, fmt.Errorf("decoding: %w", err)
	}
	return g, nil
}
