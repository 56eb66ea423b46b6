package data

import (
	"context"
	"time"
)

// Limits of Blobs.
const (
	// MaxBlobKeyLen is the longest blob key, in bytes. certmagic's keys
	// (certificates/<issuer>/<domain>/<domain>.crt and the like) are well
	// under 300 bytes.
	MaxBlobKeyLen = 512
	// MaxBlobSize is the largest blob value, in bytes: 1 MiB. It keeps one
	// value inside etcd's default request limit (1.5 MiB) with room for the
	// rest of the request; a certificate chain is a few KiB.
	MaxBlobSize = 1 << 20
)

// Blob is one value stored under a key by Blobs.
type Blob struct {
	Key   string
	Value []byte
	// Modified is when the value was last written, by the store's clock,
	// in UTC.
	Modified time.Time
}

// BlobInfo describes a blob without its value.
type BlobInfo struct {
	Key      string
	Size     int // len(Value)
	Modified time.Time
}

// Blobs stores small opaque values under path-like keys: the ACME
// accounts, certificates and private keys that certmagic keeps (its
// Storage interface maps onto Blobs and Locks), so that every replica on
// an etcd cluster serves the same certificate.
//
// The store never looks inside a value. A secret, such as a certificate's
// private key, is sealed by the caller before it is stored, with SealBlob,
// which binds it to its key; such values carry a header (IsSealedBlob) so
// that key rotation (Reseal) finds and re-seals them. Blobs do not expire,
// are not watched, and belong to no user (DeleteUser leaves them alone).
//
// # Keys
//
// A key is 1 to MaxBlobKeyLen bytes of printable ASCII (0x20 to 0x7E) and
// does not contain "..". "/" has no meaning to the store: keys are plain
// strings, and a prefix lists every key that begins with it, at any depth.
//
// # Errors
//
//   - ErrInvalid: a key or prefix outside the rules above, or a value
//     longer than MaxBlobSize. Checked before anything is read or written.
//   - ErrNotFound: GetBlob, UpdateBlob and DeleteBlob of a key that holds
//     no value.
//   - ErrClosed, ErrUnavailable, ctx's error: as for every method.
type Blobs interface {
	// PutBlob stores value under key, replacing any value there, and sets
	// Modified to the store's now. A nil value is stored as an empty one.
	PutBlob(ctx context.Context, key string, value []byte) error
	// GetBlob returns the value under key.
	GetBlob(ctx context.Context, key string) (Blob, error)
	// UpdateBlob replaces the value under key with fn's result, in one
	// atomic step, and sets Modified to the store's now. As with every
	// update function, fn may be called more than once; if it returns an
	// error nothing is written and that error is returned unchanged. A
	// result longer than MaxBlobSize is ErrInvalid. It returns the blob as
	// stored.
	UpdateBlob(ctx context.Context, key string, fn func(Blob) ([]byte, error)) (Blob, error)
	// DeleteBlob deletes the value under key.
	DeleteBlob(ctx context.Context, key string) error
	// ListBlobs describes every blob whose key begins with prefix ("" for
	// every blob), ordered by key.
	ListBlobs(ctx context.Context, prefix string) ([]BlobInfo, error)
}
