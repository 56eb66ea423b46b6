// Package hs256 is the one setting of the JWTs that Arbor signs for itself
// with a shared HMAC key: the browser's session tokens (sessiontoken) and
// the CLI's access and refresh tokens (clitoken). Both must refuse the
// same things (another algorithm, a missing exp or iat, a wrong issuer or
// audience, unknown JSON), so they take their parser and key function from
// here rather than each spelling the options.
package hs256

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Parser returns a parser that accepts only HS256, requires exp and iat,
// requires iss to be issuer and aud to hold audience, checks the times on
// the clock now with leeway, and decodes the claims strictly.
func Parser(issuer, audience string, leeway time.Duration, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
}

// KeyFunc hands out key only for an HS256 token. The parsers already
// refuse other algorithms; this keeps an RSA or "none" token from ever
// being checked against the HMAC key should that option be lost. Make it
// once per key: a func value made per call costs an allocation.
func KeyFunc(key []byte) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return key, nil
	}
}

// Errors are a token package's sentinel errors for what a parse finds
// wrong.
type Errors struct {
	Invalid, Expired, WrongAudience, WrongIssuer error
}

// Wrap returns the parse error err wrapped in the sentinel that names it,
// with err's text for logs: Expired, WrongAudience or WrongIssuer, in that
// order when the claims have several faults, and Invalid for anything else
// (malformed, another algorithm, a bad signature, a missing claim).
func (e Errors) Wrap(err error) error {
	s := e.Invalid
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenMalformed),
		errors.Is(err, jwt.ErrTokenUnverifiable):
		// Returned before the claims are read: never one of the below.
	case errors.Is(err, jwt.ErrTokenExpired):
		s = e.Expired
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		s = e.WrongAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		s = e.WrongIssuer
	}
	return fmt.Errorf("%w: %v", s, err)
}
