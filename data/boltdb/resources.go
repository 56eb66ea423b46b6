package boltdb

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// The record types. Each names its bucket, key, owner and lifetime; the
// generic code in schema.go does the rest.

var users = &resource[data.User]{
	name:      "user",
	bucket:    bucketUsers,
	codec:     codec.User,
	key:       func(u *data.User) string { return u.ID },
	validate:  records.ValidateUser,
	normalize: records.NormalizeUser,
}

var identities = &resource[data.Identity]{
	name:       "identity",
	bucket:     bucketIdentities,
	codec:      codec.Identity,
	key:        func(i *data.Identity) string { return join(i.Provider, i.Subject) },
	owner:      func(i *data.Identity) string { return i.UserID },
	ownerIndex: idxUserIdentities,
	movable:    true, // linking accounts moves an identity to another user
	validate:   records.ValidateIdentity,
	normalize:  records.NormalizeIdentity,
}

var sessions = &resource[data.Session]{
	name:       "session",
	bucket:     bucketSessions,
	codec:      codec.Session,
	secret:     true,
	key:        func(s *data.Session) string { return s.ID },
	owner:      func(s *data.Session) string { return s.UserID },
	ownerIndex: idxUserSessions,
	expires:    func(s *data.Session) time.Time { return s.ExpiresAt },
	expiryKind: kindSession,
	validate:   records.ValidateSession,
	normalize:  records.NormalizeSession,
}

var oauthStates = &resource[data.OAuthState]{
	name:       "oauth state",
	bucket:     bucketOAuthStates,
	codec:      codec.OAuthState,
	secret:     true,
	key:        func(s *data.OAuthState) string { return s.ID },
	expires:    func(s *data.OAuthState) time.Time { return s.ExpiresAt },
	expiryKind: kindOAuthState,
	validate:   records.ValidateOAuthState,
	normalize:  records.NormalizeOAuthState,
}

var deviceCodes = &resource[data.DeviceCode]{
	name:       "device code",
	bucket:     bucketDeviceCodes,
	codec:      codec.DeviceCode,
	secret:     true,
	key:        func(d *data.DeviceCode) string { return d.Code },
	expires:    func(d *data.DeviceCode) time.Time { return d.ExpiresAt },
	expiryKind: kindDeviceCode,
	validate:   records.ValidateDeviceCode,
	normalize:  records.NormalizeDeviceCode,
	onInsert: func(tx *bolt.Tx, d *data.DeviceCode) error {
		if d.UserCode == "" {
			return nil
		}
		return put(tx, idxUserCodes, []byte(d.UserCode), []byte(d.Code))
	},
	onRemove: func(tx *bolt.Tx, d *data.DeviceCode) error {
		if d.UserCode == "" {
			return nil
		}
		// The user code may have passed to a newer device code after this
		// one expired; leave that one's entry alone.
		if string(tx.Bucket([]byte(idxUserCodes)).Get([]byte(d.UserCode))) != d.Code {
			return nil
		}
		return del(tx, idxUserCodes, []byte(d.UserCode))
	},
}

func init() {
	// Set here: userCodeFree reads deviceCodes, which would make the
	// variable's initialisation refer to itself.
	deviceCodes.precheck = userCodeFree
}

// userCodeFree refuses a device code whose user code belongs to another
// live device code.
func userCodeFree(tx *bolt.Tx, d *data.DeviceCode, now time.Time) error {
	if d.UserCode == "" {
		return nil
	}
	holder := string(tx.Bucket([]byte(idxUserCodes)).Get([]byte(d.UserCode)))
	if holder == "" || holder == d.Code {
		return nil
	}
	other, ok, err := deviceCodes.get(tx, holder)
	if err != nil {
		return err
	}
	if ok && other.UserCode == d.UserCode && deviceCodes.live(&other, now) {
		return fmt.Errorf("device code: its user code is taken by a live device code: %w", data.ErrAlreadyExists)
	}
	return nil
}

var refreshFamilies = &resource[data.RefreshFamily]{
	name:       "refresh family",
	bucket:     bucketRefresh,
	codec:      codec.RefreshFamily,
	secret:     true,
	key:        func(f *data.RefreshFamily) string { return f.ID },
	owner:      func(f *data.RefreshFamily) string { return f.UserID },
	ownerIndex: idxUserRefresh,
	expires:    func(f *data.RefreshFamily) time.Time { return f.ExpiresAt },
	expiryKind: kindRefresh,
	validate:   records.ValidateRefreshFamily,
	normalize:  records.NormalizeRefreshFamily,
}

var workers = &resource[data.Worker]{
	name:       "worker",
	bucket:     bucketWorkers,
	codec:      codec.Worker,
	key:        func(w *data.Worker) string { return w.ID },
	owner:      func(w *data.Worker) string { return w.UserID },
	ownerIndex: idxUserWorkers,
	validate:   records.ValidateWorker,
	normalize:  records.NormalizeWorker,
}

var connections = &resource[data.Connection]{
	name:   "connection",
	bucket: bucketConnections,
	codec:  codec.Connection,
	key:    func(c *data.Connection) string { return join(c.UserID, c.Provider) },
	owner:  func(c *data.Connection) string { return c.UserID },
	// The key begins with the user id: the bucket is its own owner index.
	validate:  records.ValidateConnection,
	normalize: records.NormalizeConnection,
}

// userOwned is what DeleteUser deletes with the user.
var userOwned = []ownedResource{identities, sessions, refreshFamilies, workers, connections}

// expiring maps an idx_expiry kind to its resource.
var expiring = map[byte]expiringResource{
	kindSession:    sessions,
	kindOAuthState: oauthStates,
	kindDeviceCode: deviceCodes,
	kindRefresh:    refreshFamilies,
}
