// Package flowstate seals the state of an OAuth sign-in (provider, purpose,
// PKCE verifier, redirect URI, return path, expiry, browser binding) into
// the OAuth `state` parameter itself, so that starting a sign-in, and a
// callback that fails, write nothing to the store.
//
// # Why in the state parameter
//
// Arbor used to keep one store record per /auth/start. An anonymous visitor
// could create about 5,000 of them a second, and a bbolt file never
// shrinks. A sealed value costs the server nothing until the provider has
// vouched for the user. It travels in `state` (as Pomerium does) rather
// than in a cookie with only a nonce in `state` (as oauth2-proxy does):
//
//   - two tabs signing in at once each carry their own state, while they
//     share the one browser-binding cookie Arbor already sets; one cookie
//     per flow would race (the last tab wins) or pile up cookies;
//   - replicas share the key (it derives from the session key), so any
//     replica can finish a sign-in another one started, with no store.
//
// # What is sealed, and how
//
// AES-256-GCM under a key of its own for each state: HMAC-SHA256, keyed
// with a key derived by HKDF-SHA256 from the key New gets, of the state's
// random 128-bit ID, which travels in clear in front of the ciphertext
// (with the version byte, both authenticated). As no key seals twice, the
// nonce is fixed and a flood of starts cannot wear the key out: GCM with
// random 96-bit nonces under one key is good for about 2^32 seals (NIST
// SP 800-38D), ten days at 5,000 a second. The ID reveals nothing; it
// names the state's spent marker. The PKCE verifier is therefore never readable by the provider, a proxy's
// log or the Referer. The browser binding is an HMAC (under a second
// derived key) of the random value in the flow cookie: a state that leaks
// is useless in another browser, and an attacker cannot make a victim's
// browser finish the attacker's sign-in (login CSRF).
//
// A sealed state is at most MaxLen characters (typically about 300): the
// caller keeps the return path short enough (providers and proxies cap
// URL length, commonly at 8 KiB, and the state travels twice).
//
// # What it does not do
//
// A sealed value can be presented again until it expires; Open cannot know
// it was used. The caller records that a state is spent (by State.ID)
// once the provider's code exchange has succeeded, and refuses a spent
// one. Rotating the key (the session key) makes states sealed under the
// old one fail to open: a sign-in in flight at that moment must start
// again, which is acceptable for a ten-minute flow.
package flowstate

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// MaxLen is the longest sealed state, in characters, that Seal makes and
// Open reads.
const MaxLen = 1024

const (
	version  = 1
	idSize   = 16
	bindSize = 16
	header   = 1 + idSize // version, ID
	tagSize  = 16
)

// Errors returned by Open, in the order it checks.
var (
	// ErrInvalid is returned when the value is not a state this Arbor
	// sealed: empty, too long, not base64url, truncated, tampered with, or
	// sealed under another key (after a session key change).
	ErrInvalid = errors.New("flowstate: not a sign-in state this server sealed (malformed, truncated, tampered with, or sealed under another key)")
	// ErrExpired is returned when the state's lifetime has passed.
	ErrExpired = errors.New("flowstate: the sign-in state has expired")
	// ErrProvider is returned when the state was made for another
	// provider than the callback it arrived at.
	ErrProvider = errors.New("flowstate: the sign-in state was made for another provider")
	// ErrBinding is returned when the browser-binding value is missing or
	// is not the one the state was sealed with (another browser).
	ErrBinding = errors.New("flowstate: the sign-in state was made in another browser")
)

// ErrTooLong is returned by Seal when the sealed state would be longer
// than MaxLen (shorten the return path).
var ErrTooLong = fmt.Errorf("flowstate: the sealed state would be longer than %d characters", MaxLen)

// State is what a sign-in carries from its start to its callback.
type State struct {
	// ID names this sign-in: 128 random bits, base64url. Seal sets it
	// (whatever the caller put there); the caller records it as spent.
	ID          string
	Provider    string
	Purpose     string
	UserID      string // the signed-in user, for link and connect
	Verifier    string // the PKCE code verifier
	RedirectURI string
	ReturnTo    string
	// ExpiresAt is kept to the second.
	ExpiresAt time.Time
}

// Sealer seals and opens states. It is safe for concurrent use.
type Sealer struct {
	enc  []byte // keys the per-state keys
	bind []byte // keys the browser binding
}

// New returns a Sealer whose keys derive from key (32 bytes or more).
func New(key []byte) (*Sealer, error) {
	if len(key) < 32 {
		return nil, errors.New("flowstate: the key must be at least 32 bytes")
	}
	encKey, err1 := hkdf.Key(sha256.New, key, nil, "arbor oauth state: encryption", 32)
	bindKey, err2 := hkdf.Key(sha256.New, key, nil, "arbor oauth state: browser binding", 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("flowstate: deriving keys: %w", err)
	}
	return &Sealer{enc: encKey, bind: bindKey}, nil
}

// aead returns the cipher of the state with the given header (version and
// ID); it seals once, so its nonce is fixed.
func (s *Sealer) aead(hdr []byte) cipher.AEAD {
	m := hmac.New(sha256.New, s.enc)
	m.Write(hdr)
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key: cannot happen
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

var zeroNonce = make([]byte, 12)

// Seal gives st a new random ID and returns it sealed and bound to
// binding (the flow cookie's value), as a base64url string for `state`.
func (s *Sealer) Seal(st State, binding string) (string, error) {
	plain := make([]byte, 0, 128+len(st.ReturnTo)+len(st.RedirectURI))
	plain = binary.BigEndian.AppendUint64(plain, uint64(st.ExpiresAt.Unix()))
	plain = append(plain, s.binding(binding)...)
	for _, f := range []string{st.Provider, st.Purpose, st.UserID, st.Verifier, st.RedirectURI, st.ReturnTo} {
		plain = binary.AppendUvarint(plain, uint64(len(f)))
		plain = append(plain, f...)
	}
	out := make([]byte, header, header+len(plain)+tagSize)
	out[0] = version
	if _, err := rand.Read(out[1:header]); err != nil {
		return "", fmt.Errorf("flowstate: reading random bytes: %w", err)
	}
	out = s.aead(out[:header]).Seal(out, zeroNonce, plain, out[:header])
	sealed := base64.RawURLEncoding.EncodeToString(out)
	if len(sealed) > MaxLen {
		return "", ErrTooLong
	}
	return sealed, nil
}

// Open authenticates sealed and checks, in this order, that it has not
// expired at now, that it was made for provider, and that binding is the
// value it was sealed with. The errors are ErrInvalid, ErrExpired,
// ErrProvider and ErrBinding.
func (s *Sealer) Open(sealed, provider, binding string, now time.Time) (State, error) {
	if sealed == "" || len(sealed) > MaxLen {
		return State{}, ErrInvalid
	}
	// Strict: one sealed value has one spelling.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sealed)
	if err != nil || len(raw) < header+tagSize || raw[0] != version {
		return State{}, ErrInvalid
	}
	hdr := raw[:header]
	plain, err := s.aead(hdr).Open(nil, zeroNonce, raw[header:], hdr)
	if err != nil {
		return State{}, ErrInvalid
	}
	st, bind, ok := decode(plain)
	st.ID = base64.RawURLEncoding.EncodeToString(hdr[1:])
	if !ok {
		// Authentic yet undecodable: only a bug here could make one.
		return State{}, ErrInvalid
	}
	switch {
	case !now.Before(st.ExpiresAt):
		return State{}, ErrExpired
	case st.Provider != provider:
		return State{}, ErrProvider
	case binding == "" || subtle.ConstantTimeCompare(s.binding(binding), bind) != 1:
		return State{}, ErrBinding
	}
	return st, nil
}

func (s *Sealer) binding(v string) []byte {
	m := hmac.New(sha256.New, s.bind)
	m.Write([]byte(v))
	return m.Sum(nil)[:bindSize]
}

func decode(p []byte) (State, []byte, bool) {
	if len(p) < 8+bindSize {
		return State{}, nil, false
	}
	var st State
	st.ExpiresAt = time.Unix(int64(binary.BigEndian.Uint64(p)), 0).UTC()
	p = p[8:]
	bind := p[:bindSize]
	p = p[bindSize:]
	for _, f := range []*string{&st.Provider, &st.Purpose, &st.UserID, &st.Verifier, &st.RedirectURI, &st.ReturnTo} {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return State{}, nil, false
		}
		*f = string(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	return st, bind, len(p) == 0
}
