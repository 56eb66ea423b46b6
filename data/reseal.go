package data

import (
	"context"
	"errors"
	"fmt"
)

// Resealer re-encrypts an envelope under the newest key (package seal's
// Keyring implements it). It is an interface so that data does not depend on
// a particular cipher.
type Resealer interface {
	NeedsReseal(envelope []byte) bool
	Reseal(envelope, aad []byte) ([]byte, error)
}

// ResealStats reports what Reseal did.
type ResealStats struct {
	// Total is the number of sealed records examined: connections,
	// identities' login grants and sealed blobs.
	Total int `json:"total"`
	// Resealed were re-encrypted under the newest key.
	Resealed int `json:"resealed"`
	// Current were already sealed with the newest key.
	Current int `json:"current"`
	// Vanished were deleted between listing and updating (not an error).
	Vanished int `json:"vanished"`
}

// SealedRecords is what Reseal walks: the records that hold sealed bytes.
// Store implements it.
type SealedRecords interface {
	Connections
	Identities
	Blobs
}

// Reseal re-encrypts every sealed record under the newest key of r: the
// tokens of every connection, the login grant of every identity that keeps
// one (Identity.Grant, bound by IdentityAAD), and every blob whose value
// SealBlob made (IsSealedBlob; other blobs are not secrets and are left
// alone). It runs record by record through UpdateConnection,
// UpdateIdentity and UpdateBlob, so it is safe
// while the gateway serves: a record written concurrently is simply
// re-checked. It stops at the first record that fails to open, naming it,
// because that means a key is missing from the keyring (never a reason to
// drop data).
func Reseal(ctx context.Context, s SealedRecords, r Resealer) (ResealStats, error) {
	var st ResealStats
	conns, err := s.ListConnections(ctx, "")
	if err != nil {
		return st, fmt.Errorf("reseal: listing connections: %w", err)
	}
	for _, conn := range conns {
		err := st.row(r, conn.Sealed, func(reseal resealFunc) error {
			_, err := s.UpdateConnection(ctx, conn.UserID, conn.Provider, func(cur Connection) (Connection, error) {
				env, err := reseal(cur.Sealed, ConnectionAAD(cur.UserID, cur.Provider))
				if env != nil {
					cur.Sealed = env
				}
				return cur, err
			})
			return err
		})
		if err != nil {
			return st, fmt.Errorf("reseal: connection of user %s to %s: %w", conn.UserID, conn.Provider, err)
		}
	}
	if err := resealGrants(ctx, s, r, &st); err != nil {
		return st, err
	}
	if err := resealBlobs(ctx, s, r, &st); err != nil {
		return st, err
	}
	return st, nil
}

// resealGrants re-seals the identities' login grants. An identity without
// a grant holds nothing sealed and is not counted.
func resealGrants(ctx context.Context, s Identities, r Resealer, st *ResealStats) error {
	ids, err := s.ListIdentities(ctx, "")
	if err != nil {
		return fmt.Errorf("reseal: listing identities: %w", err)
	}
	for _, id := range ids {
		if id.Grant == nil {
			continue
		}
		err := st.row(r, id.Grant, func(reseal resealFunc) error {
			_, err := s.UpdateIdentity(ctx, id.Provider, id.Subject, func(cur Identity) (Identity, error) {
				env, err := reseal(cur.Grant, IdentityAAD(cur.Provider, cur.Subject))
				if env != nil {
					cur.Grant = env
				}
				return cur, err
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("reseal: login grant of identity %s/%s (user %s): %w", id.Provider, id.Subject, id.UserID, err)
		}
	}
	return nil
}

// errBlobCurrent ends an UpdateBlob without writing: the blob needs no
// reseal (any more).
var errBlobCurrent = errors.New("blob needs no reseal")

// resealBlobs re-seals the sealed blobs. A blob is read to find out whether
// it is sealed; values are small (certificates, keys), and only one is in
// memory at a time.
func resealBlobs(ctx context.Context, s Blobs, r Resealer, st *ResealStats) error {
	infos, err := s.ListBlobs(ctx, "")
	if err != nil {
		return fmt.Errorf("reseal: listing blobs: %w", err)
	}
	for _, info := range infos {
		b, err := s.GetBlob(ctx, info.Key)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // gone: whatever it held is no longer stored
		case err != nil:
			return fmt.Errorf("reseal: reading blob %q: %w", info.Key, err)
		}
		env, sealed := sealedEnvelope(b.Value)
		if !sealed {
			continue
		}
		err = st.row(r, env, func(reseal resealFunc) error {
			_, err := s.UpdateBlob(ctx, info.Key, func(cur Blob) ([]byte, error) {
				env, sealed := sealedEnvelope(cur.Value)
				if !sealed {
					return nil, errBlobCurrent
				}
				nenv, err := reseal(env, BlobAAD(cur.Key))
				switch {
				case err != nil:
					return nil, err
				case nenv == nil:
					return nil, errBlobCurrent
				}
				return append([]byte(SealedBlobHeader), nenv...), nil
			})
			if errors.Is(err, errBlobCurrent) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("reseal: blob %q: %w", info.Key, err)
		}
	}
	return nil
}

// resealFunc re-seals the stored envelope env of a row under the newest
// key, binding it to aad; it returns nil (and no error) when env needs no
// reseal, or no longer does.
type resealFunc func(env, aad []byte) ([]byte, error)

// row re-seals one sealed row and counts it in st. listed is the row's
// envelope as listed; update runs the backend's update of the row, calling
// reseal on the envelope it reads there and storing what reseal returns
// unless that is nil. A row gone meanwhile is Vanished, not an error.
func (st *ResealStats) row(r Resealer, listed []byte, update func(reseal resealFunc) error) error {
	st.Total++
	if !r.NeedsReseal(listed) {
		st.Current++
		return nil
	}
	changed := false
	err := update(func(env, aad []byte) ([]byte, error) {
		changed = false // an update function may run more than once
		if env == nil || !r.NeedsReseal(env) {
			return nil, nil
		}
		nenv, err := r.Reseal(env, aad)
		if err != nil {
			return nil, err
		}
		changed = true
		return nenv, nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		st.Vanished++
	case err != nil:
		return err
	case changed:
		st.Resealed++
	default:
		st.Current++
	}
	return nil
}
