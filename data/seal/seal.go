// Package seal encrypts records at rest with AES-256-GCM envelopes.
//
// An envelope names the key that sealed it, so a keyring can hold several
// keys at once: the newest key seals, every key opens. Rotating is therefore
// two steps an operator can take while serving: add a new key (it becomes the
// newest), then re-seal every record (arbor keys rotate) and finally drop the
// old key from the configuration.
//
// Every Seal and Open takes additional authenticated data: the identity of
// the row the ciphertext belongs to (see data.ConnectionAAD, and
// data.BlobAAD for sealed blobs such as ACME keys). GCM
// authenticates it without storing it, so a ciphertext copied into another
// user's row, or another provider's, fails to open instead of handing one
// user's token to another.
//
// # Envelope format (version 1)
//
//	byte 0        version (1)
//	byte 1        length n of the key id (1..64)
//	bytes 2..2+n  key id
//	12 bytes      random nonce
//	rest          GCM ciphertext and 16-byte tag
//
// The header (version and key id) is part of the authenticated data, so it
// cannot be changed either.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the size of an AES-256 key in bytes.
const KeySize = 32

const (
	version1  = 1
	nonceSize = 12
	maxIDLen  = 64
)

// Errors returned by Open.
var (
	// ErrMalformed is returned when the bytes are not an envelope this
	// package wrote (too short, unknown version, bad key id length).
	ErrMalformed = errors.New("seal: malformed envelope")
	// ErrUnknownKey is returned when the envelope was sealed with a key id
	// the keyring does not hold (the key was removed from configuration too
	// early: put it back, run `arbor keys rotate`, then remove it).
	ErrUnknownKey = errors.New("seal: envelope sealed with a key not in the keyring")
	// ErrTampered is returned when authentication fails: the ciphertext, the
	// header or the additional data differ from what was sealed.
	ErrTampered = errors.New("seal: envelope failed authentication (tampered, or opened for another record)")
)

// Key is one named AES-256 key.
type Key struct {
	ID     string
	Secret []byte
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Keyring seals with its newest key and opens with any of its keys. It is
// safe for concurrent use.
type Keyring struct {
	newest string
	aeads  map[string]cipher.AEAD
	ids    []string
}

// NewKeyring builds a keyring from keys; the LAST key is the newest and seals
// new envelopes. Key ids must be unique, 1-64 characters of [A-Za-z0-9._-],
// and every secret exactly 32 bytes.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no encryption keys; make one with `arbor keys generate`")
	}
	kr := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("seal: key id %q: want 1-64 characters of A-Z a-z 0-9 . _ -", k.ID)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("seal: key %q is %d bytes, want %d; make one with `arbor keys generate`", k.ID, len(k.Secret), KeySize)
		}
		if _, dup := kr.aeads[k.ID]; dup {
			return nil, fmt.Errorf("seal: key id %q appears twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", k.ID, err)
		}
		kr.aeads[k.ID] = aead
		kr.ids = append(kr.ids, k.ID)
	}
	kr.newest = keys[len(keys)-1].ID
	return kr, nil
}

// NewestID returns the id of the key that seals.
func (kr *Keyring) NewestID() string { return kr.newest }

// IDs returns the key ids in configuration order (oldest first).
func (kr *Keyring) IDs() []string { return append([]string(nil), kr.ids...) }

// Seal encrypts plaintext under the newest key, binding aad.
func (kr *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := kr.aeads[kr.newest]
	hdrLen := 2 + len(kr.newest)
	out := make([]byte, hdrLen+nonceSize, hdrLen+nonceSize+len(plaintext)+aead.Overhead())
	out[0] = version1
	out[1] = byte(len(kr.newest))
	copy(out[2:], kr.newest)
	nonce := out[hdrLen : hdrLen+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: reading random nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, additional(out[:hdrLen], aad)), nil
}

// Open decrypts an envelope made by Seal with the same aad. It never returns
// partial or unauthenticated plaintext.
func (kr *Keyring) Open(envelope, aad []byte) ([]byte, error) {
	id, hdrLen, err := parseHeader(envelope)
	if err != nil {
		return nil, err
	}
	aead, ok := kr.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, id)
	}
	if len(envelope) < hdrLen+nonceSize+aead.Overhead() {
		return nil, ErrMalformed
	}
	nonce := envelope[hdrLen : hdrLen+nonceSize]
	pt, err := aead.Open(nil, nonce, envelope[hdrLen+nonceSize:], additional(envelope[:hdrLen], aad))
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}

// KeyID returns the id of the key that sealed envelope.
func KeyID(envelope []byte) (string, error) {
	id, _, err := parseHeader(envelope)
	return id, err
}

// NeedsReseal reports whether envelope was sealed with a key other than the
// newest one.
func (kr *Keyring) NeedsReseal(envelope []byte) bool {
	id, _, err := parseHeader(envelope)
	return err == nil && id != kr.newest
}

// Reseal opens envelope and seals its plaintext again under the newest key.
func (kr *Keyring) Reseal(envelope, aad []byte) ([]byte, error) {
	pt, err := kr.Open(envelope, aad)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return kr.Seal(pt, aad)
}

func parseHeader(envelope []byte) (id string, hdrLen int, err error) {
	if len(envelope) < 2 || envelope[0] != version1 {
		return "", 0, ErrMalformed
	}
	n := int(envelope[1])
	if n == 0 || n > maxIDLen || len(envelope) < 2+n {
		return "", 0, ErrMalformed
	}
	return string(envelope[2 : 2+n]), 2 + n, nil
}

func additional(header, aad []byte) []byte {
	out := make([]byte, 0, len(header)+1+len(aad))
	out = append(out, header...)
	out = append(out, 0)
	return append(out, aad...)
}

// GenerateKey returns a new random 32-byte key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("seal: reading random key: %w", err)
	}
	return k, nil
}

// ParseKeys parses the keyring notation used in configuration:
// comma-separated `id:base64` pairs, oldest first, newest last, e.g.
// `k1:q83v...,k2:Zm9v...`. Standard or URL-safe base64, padded or not.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("seal: key #%d: want id:base64 (for example k1:%s)", i+1, strings.Repeat("A", 43))
		}
		secret, err := DecodeSecret(b64)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %v", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("seal: no keys given; make one with `arbor keys generate`")
	}
	return keys, nil
}

// DecodeSecret decodes base64 in any of the four common alphabets/paddings.
// The error never contains the input.
func DecodeSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not valid base64")
}

// EncodeSecret encodes a secret the way `arbor keys generate` prints it.
func EncodeSecret(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
