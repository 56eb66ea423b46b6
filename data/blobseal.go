package data

import (
	"bytes"
	"errors"
	"fmt"
)

// Sealed blobs
//
// A blob that holds a secret (an ACME account key, a certificate's private
// key) is sealed the way a Connection's tokens are: an envelope of package
// seal, made by the caller, with the blob's key as additional data
// (BlobAAD), so that a sealed value copied under another key does not
// open. The store only ever sees the sealed bytes.
//
// The stored value is SealedBlobHeader followed by the envelope. The header
// is what lets Reseal find the sealed blobs among the others (certificates,
// metadata) and re-seal them under the newest key without being told which
// keys hold secrets; it cannot be mistaken for what certmagic stores (PEM
// text, JSON, DER, all of which begin otherwise).

// SealedBlobHeader begins every value made by SealBlob.
const SealedBlobHeader = "arbor-sealed-blob/v1\x00"

// MaxSealedBlobPlaintext is the largest plaintext SealBlob accepts: what
// fits in MaxBlobSize after the header and the envelope's own overhead
// (version, key id of up to 64 bytes, nonce and tag: at most 94 bytes).
const MaxSealedBlobPlaintext = MaxBlobSize - len(SealedBlobHeader) - 94

// ErrNotSealed is returned by OpenBlob for a value that SealBlob did not
// make (it lacks SealedBlobHeader).
var ErrNotSealed = errors.New("blob value is not sealed")

// Sealer seals and opens envelopes (package seal's Keyring implements it).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(envelope, aad []byte) ([]byte, error)
}

// BlobAAD is the additional authenticated data that binds a sealed blob to
// its key.
func BlobAAD(key string) []byte {
	return fmt.Appendf(nil, "arbor/blob/v1\x00%s", key)
}

// SealBlob seals plaintext for storage under key: SealedBlobHeader and an
// envelope bound to key. Store the result with PutBlob(ctx, key, …).
// ErrInvalid if plaintext is longer than MaxSealedBlobPlaintext.
func SealBlob(s Sealer, key string, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxSealedBlobPlaintext {
		return nil, fmt.Errorf("blob %q: %d bytes to seal, more than %d: %w", key, len(plaintext), MaxSealedBlobPlaintext, ErrInvalid)
	}
	env, err := s.Seal(plaintext, BlobAAD(key))
	if err != nil {
		return nil, fmt.Errorf("blob %q: sealing: %w", key, err)
	}
	return append([]byte(SealedBlobHeader), env...), nil
}

// OpenBlob opens a value SealBlob made for key. ErrNotSealed if value has
// no SealedBlobHeader; the Sealer's errors (package seal: ErrTampered for a
// value sealed for another key or changed, ErrUnknownKey for a key no
// longer configured) otherwise.
func OpenBlob(s Sealer, key string, value []byte) ([]byte, error) {
	env, ok := sealedEnvelope(value)
	if !ok {
		return nil, fmt.Errorf("blob %q: %w", key, ErrNotSealed)
	}
	pt, err := s.Open(env, BlobAAD(key))
	if err != nil {
		return nil, fmt.Errorf("blob %q: opening: %w", key, err)
	}
	return pt, nil
}

// IsSealedBlob reports whether value was made by SealBlob (begins with
// SealedBlobHeader).
func IsSealedBlob(value []byte) bool {
	_, ok := sealedEnvelope(value)
	return ok
}

func sealedEnvelope(value []byte) ([]byte, bool) {
	if !bytes.HasPrefix(value, []byte(SealedBlobHeader)) {
		return nil, false
	}
	return value[len(SealedBlobHeader):], true
}
