package boltdb

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// data.Blobs: one bucket keyed by the blob key, values in codec.Blob form.

var blobs = &resource[data.Blob]{
	name:      "blob",
	bucket:    bucketBlobs,
	codec:     codec.Blob,
	key:       func(b *data.Blob) string { return b.Key },
	validate:  records.ValidateBlob,
	normalize: records.NormalizeBlob,
}

// PutBlob stores value under key, replacing any value there.
func (s *Store) PutBlob(ctx context.Context, key string, value []byte) error {
	b, err := records.NewBlob(key, value, s.now())
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *bolt.Tx) error {
		return put(tx, bucketBlobs, []byte(key), blobs.codec.Encode(&b))
	})
}

func (s *Store) GetBlob(ctx context.Context, key string) (data.Blob, error) {
	if err := records.CheckBlobKey(key); err != nil {
		return data.Blob{}, err
	}
	return getOne(s, ctx, blobs, key)
}

// UpdateBlob replaces the value under key with fn's result, stamped with
// the store's now.
func (s *Store) UpdateBlob(ctx context.Context, key string, fn func(data.Blob) ([]byte, error)) (data.Blob, error) {
	if err := records.CheckBlobKey(key); err != nil {
		return data.Blob{}, err
	}
	return updateOne(s, ctx, blobs, key, records.BlobUpdate(fn, s.now), nil, nil)
}

func (s *Store) DeleteBlob(ctx context.Context, key string) error {
	if err := records.CheckBlobKey(key); err != nil {
		return err
	}
	return deleteOne(s, ctx, blobs, key)
}

// ListBlobs walks the bucket from prefix in key order.
func (s *Store) ListBlobs(ctx context.Context, prefix string) ([]data.BlobInfo, error) {
	if err := records.CheckBlobPrefix(prefix); err != nil {
		return nil, err
	}
	var out []data.BlobInfo
	err := s.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		p := []byte(prefix)
		c := tx.Bucket([]byte(bucketBlobs)).Cursor()
		for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
			var b data.Blob
			if err := blobs.decode(string(k), raw, &b); err != nil {
				return err
			}
			out = append(out, records.BlobInfo(&b))
		}
		return nil
	})
	return out, err
}

// ImportBlob stores b as it is, Modified included; data.ErrAlreadyExists
// if its key holds a value.
func (s *Store) ImportBlob(ctx context.Context, b data.Blob) error {
	return createOne(s, ctx, blobs, b)
}
