package boltdb

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// Listing and importing for data.Copy (data.Exporter, data.Importer).

var (
	_ data.Exporter = (*Store)(nil)
	_ data.Importer = (*Store)(nil)
)

// ListOAuthStates returns every live OAuth state ordered by ID.
func (s *Store) ListOAuthStates(ctx context.Context) ([]data.OAuthState, error) {
	return listLive(s, ctx, oauthStates)
}

// ListDeviceCodes returns every live device code ordered by Code.
func (s *Store) ListDeviceCodes(ctx context.Context) ([]data.DeviceCode, error) {
	return listLive(s, ctx, deviceCodes)
}

func listLive[T any](s *Store, ctx context.Context, r *resource[T]) ([]T, error) {
	var out []T
	err := s.view(ctx, func(tx *bolt.Tx) error {
		all, err := r.all(tx) // key order
		if err != nil {
			return err
		}
		now := s.now()
		out = all[:0]
		for i := range all {
			if r.live(&all[i], now) {
				out = append(out, all[i])
			}
		}
		return nil
	})
	return out, err
}

// ImportConnection stores c as CreateConnection does, keeping c.Version.
func (s *Store) ImportConnection(ctx context.Context, c data.Connection) error {
	if err := data.CheckImportConnection(c); err != nil {
		return err
	}
	return createOne(s, ctx, connections, c)
}

// ImportAudit stores events with their Seq and Time in one transaction, and
// raises the bucket's sequence to the highest Seq so that AppendAudit
// continues above it.
func (s *Store) ImportAudit(ctx context.Context, events []data.AuditEvent) error {
	if err := data.CheckImportAudit(events, records.CheckKey); err != nil {
		return err
	}
	return s.write(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketAudit))
		// Refuse before changing anything: write requires it.
		for _, e := range events {
			if b.Get(seqKey(e.Seq)) != nil {
				return fmt.Errorf("audit event %d: %w", e.Seq, data.ErrAlreadyExists)
			}
		}
		high := b.Sequence()
		for _, e := range events {
			e.Time = records.UTC(e.Time)
			raw := codec.AuditEvent.Encode(&e)
			if err := put(tx, bucketAudit, seqKey(e.Seq), raw); err != nil {
				return err
			}
			if e.UserID != "" {
				if err := put(tx, idxAuditUser, append(ownerPrefix(e.UserID), seqKey(e.Seq)...), empty); err != nil {
					return err
				}
			}
			high = max(high, e.Seq)
		}
		if err := b.SetSequence(high); err != nil {
			return &writeFailure{fmt.Errorf("audit sequence: %w", err)}
		}
		return nil
	})
}
