package assertion

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
)

// pemType is the PEM block type of a PKCS#8 private key.
const pemType = "PRIVATE KEY"

// GenerateKey returns a new random Ed25519 private key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("assertion: generate key: %w", err)
	}
	return priv, nil
}

// MarshalKey returns key as a PKCS#8 "PRIVATE KEY" PEM block, for the caller
// to keep sealed in the store or in a 0600 file.
func MarshalKey(key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("assertion: private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("assertion: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), nil
}

// ParseKey parses a PKCS#8 PEM block written by MarshalKey. It fails on
// anything that is not exactly one such block holding an Ed25519 key.
func ParseKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("assertion: parse key: no PEM block")
	}
	if block.Type != pemType {
		return nil, fmt.Errorf("assertion: parse key: PEM type %q, want %q", block.Type, pemType)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("assertion: parse key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("assertion: parse key: %T is not an Ed25519 key", k)
	}
	return priv, nil
}

// KeyID returns the RFC 7638 JWK thumbprint of pub: the unpadded base64url
// SHA-256 of the canonical JWK {"crv":"Ed25519","kty":"OKP","x":"…"}
// (required members only, in lexicographic order, no whitespace).
func KeyID(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
