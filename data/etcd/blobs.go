package etcd

import (
	"context"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// data.Blobs: one key per blob under blobs/, values in codec.Blob form.
// Blobs have no owner and no lease, and no watch follows them: a replica
// reads a certificate from the store when it needs it (certmagic keeps
// its own cache and re-reads on renewal).

var blobs = &resource[data.Blob]{
	name:      "blob",
	prefix:    prefixBlobs,
	codec:     codec.Blob,
	id:        func(b *data.Blob) string { return b.Key },
	validate:  records.ValidateBlob,
	normalize: records.NormalizeBlob,
}

// PutBlob stores value under key, replacing any value there. The put is
// unconditional, so retrying one whose answer was lost is harmless.
func (s *Store) PutBlob(ctx context.Context, key string, value []byte) error {
	b, err := records.NewBlob(key, value, s.now())
	if err != nil {
		return err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	what := "storing " + blobs.show(key)
	unlock, err := s.lock(ctx, what, prefixBlobs+key) // UpdateBlob's stripe
	if err != nil {
		return err
	}
	defer unlock()
	raw := string(blobs.codec.Encode(&b))
	return s.retry(ctx, what, func() (bool, error) {
		return s.commit(ctx, what, nil, []clientv3.Op{clientv3.OpPut(blobs.key(s, "", key), raw)})
	})
}

func (s *Store) GetBlob(ctx context.Context, key string) (data.Blob, error) {
	if err := records.CheckBlobKey(key); err != nil {
		return data.Blob{}, err
	}
	return blobs.get(s, ctx, key)
}

// UpdateBlob replaces the value under key with fn's result, stamped with
// the store's now, in a transaction guarded by the mod revision it read.
func (s *Store) UpdateBlob(ctx context.Context, key string, fn func(data.Blob) ([]byte, error)) (data.Blob, error) {
	if err := records.CheckBlobKey(key); err != nil {
		return data.Blob{}, err
	}
	return blobs.update(s, ctx, key, records.BlobUpdate(fn, s.now), nil, nil)
}

func (s *Store) DeleteBlob(ctx context.Context, key string) error {
	if err := records.CheckBlobKey(key); err != nil {
		return err
	}
	return blobs.delete(s, ctx, key)
}

// ListBlobs is one range read of blobs/<prefix>, which etcd returns in
// key order.
func (s *Store) ListBlobs(ctx context.Context, prefix string) ([]data.BlobInfo, error) {
	if err := records.CheckBlobPrefix(prefix); err != nil {
		return nil, err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	resp, err := s.client.Get(ctx, s.root+prefixBlobs+prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, s.fail(ctx, "listing blobs", err)
	}
	out := make([]data.BlobInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var b data.Blob
		if err := blobs.decode(strings.TrimPrefix(string(kv.Key), s.root+prefixBlobs), kv.Value, &b); err != nil {
			return nil, err
		}
		out = append(out, records.BlobInfo(&b))
	}
	return out, nil
}

// ImportBlob stores b as it is, Modified included; data.ErrAlreadyExists
// if its key holds a value.
func (s *Store) ImportBlob(ctx context.Context, b data.Blob) error {
	return blobs.create(s, ctx, b)
}
