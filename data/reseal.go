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
	// Total is the number of sealed records examined.
	Total int `json:"total"`
	// Resealed were re-encrypted under the newest key.
	Resealed int `json:"resealed"`
	// Current were already sealed with the newest key.
	Current int `json:"current"`
	// Vanished were deleted between listing and updating (not an error).
	Vanished int `json:"vanished"`
}

// Reseal re-encrypts every sealed record under the newest key of r. It runs
// record by record through UpdateConnection, so it is safe while the
// gateway serves: a connection refreshed concurrently is simply re-checked.
// It stops at the first record that fails to open, naming it, because that
// means a key is missing from the keyring (never a reason to drop data).
func Reseal(ctx context.Context, c Connections, r Resealer) (ResealStats, error) {
	var st ResealStats
	conns, err := c.ListConnections(ctx, "")
	if err != nil {
		return st, fmt.Errorf("reseal: listing connections: %w", err)
	}
	for _, conn := range conns {
		st.Total++
		if !r.NeedsReseal(conn.Sealed) {
			st.Current++
			continue
		}
		changed := false
		_, err := c.UpdateConnection(ctx, conn.UserID, conn.Provider, func(cur Connection) (Connection, error) {
			changed = false
			if !r.NeedsReseal(cur.Sealed) {
				return cur, nil
			}
			env, err := r.Reseal(cur.Sealed, ConnectionAAD(cur.UserID, cur.Provider))
			if err != nil {
				return cur, err
			}
			cur.Sealed = env
			changed = true
			return cur, nil
		})
		switch {
		case errors.Is(err, ErrNotFound):
			st.Vanished++
		case err != nil:
			return st, fmt.Errorf("reseal: connection of user %s to %s: %w", conn.UserID, conn.Provider, err)
		case changed:
			st.Resealed++
		default:
			st.Current++
		}
	}
	return st, nil
}
