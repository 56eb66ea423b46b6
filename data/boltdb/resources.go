package boltdb

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
)

// The record types. Each names its bucket, key, owner and lifetime; the
// generic code in schema.go does the rest.

var users = &resource[data.User]{
	name:     "user",
	bucket:   bucketUsers,
	codec:    codec.User,
	key:      func(u *data.User) string { return u.ID },
	validate: func(u *data.User) error { return checkKey("user", "id", u.ID) },
	normalize: func(u *data.User) {
		u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	},
}

var identities = &resource[data.Identity]{
	name:       "identity",
	bucket:     bucketIdentities,
	codec:      codec.Identity,
	key:        func(i *data.Identity) string { return join(i.Provider, i.Subject) },
	owner:      func(i *data.Identity) string { return i.UserID },
	ownerIndex: idxUserIdentities,
	movable:    true, // linking accounts moves an identity to another user
	validate: func(i *data.Identity) error {
		return firstErr(
			checkKey("identity", "provider", i.Provider),
			checkKey("identity", "subject", i.Subject),
			checkKey("identity", "user_id", i.UserID))
	},
	normalize: func(i *data.Identity) {
		i.CreatedAt, i.LastLoginAt = utc(i.CreatedAt), utc(i.LastLoginAt)
	},
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
	validate: func(s *data.Session) error {
		return firstErr(
			checkKey("session", "id", s.ID),
			checkKey("session", "user_id", s.UserID),
			checkExpiry("session", s.ExpiresAt))
	},
	normalize: func(s *data.Session) {
		s.CreatedAt, s.LastSeenAt, s.ExpiresAt = utc(s.CreatedAt), utc(s.LastSeenAt), utc(s.ExpiresAt)
	},
}

var oauthStates = &resource[data.OAuthState]{
	name:       "oauth state",
	bucket:     bucketOAuthStates,
	codec:      codec.OAuthState,
	secret:     true,
	key:        func(s *data.OAuthState) string { return s.ID },
	expires:    func(s *data.OAuthState) time.Time { return s.ExpiresAt },
	expiryKind: kindOAuthState,
	validate: func(s *data.OAuthState) error {
		return firstErr(
			checkKey("oauth state", "id", s.ID),
			checkExpiry("oauth state", s.ExpiresAt))
	},
	normalize: func(s *data.OAuthState) {
		s.CreatedAt, s.ExpiresAt = utc(s.CreatedAt), utc(s.ExpiresAt)
	},
}

var deviceCodes = &resource[data.DeviceCode]{
	name:       "device code",
	bucket:     bucketDeviceCodes,
	codec:      codec.DeviceCode,
	secret:     true,
	key:        func(d *data.DeviceCode) string { return d.Code },
	expires:    func(d *data.DeviceCode) time.Time { return d.ExpiresAt },
	expiryKind: kindDeviceCode,
	validate: func(d *data.DeviceCode) error {
		var userCode error
		if d.UserCode != "" {
			userCode = checkKey("device code", "user_code", d.UserCode)
		}
		return firstErr(
			checkKey("device code", "code", d.Code),
			userCode,
			checkExpiry("device code", d.ExpiresAt))
	},
	normalize: func(d *data.DeviceCode) {
		d.LastPolledAt, d.ApprovedAt, d.ConsumedAt = utc(d.LastPolledAt), utc(d.ApprovedAt), utc(d.ConsumedAt)
		d.CreatedAt, d.ExpiresAt = utc(d.CreatedAt), utc(d.ExpiresAt)
	},
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
	validate: func(f *data.RefreshFamily) error {
		return firstErr(
			checkKey("refresh family", "id", f.ID),
			checkKey("refresh family", "user_id", f.UserID),
			checkExpiry("refresh family", f.ExpiresAt))
	},
	normalize: func(f *data.RefreshFamily) {
		f.RotatedAt, f.RevokedAt, f.LastUsedAt = utc(f.RotatedAt), utc(f.RevokedAt), utc(f.LastUsedAt)
		f.CreatedAt, f.ExpiresAt = utc(f.CreatedAt), utc(f.ExpiresAt)
	},
}

var workers = &resource[data.Worker]{
	name:       "worker",
	bucket:     bucketWorkers,
	codec:      codec.Worker,
	key:        func(w *data.Worker) string { return w.ID },
	owner:      func(w *data.Worker) string { return w.UserID },
	ownerIndex: idxUserWorkers,
	validate: func(w *data.Worker) error {
		return firstErr(
			checkKey("worker", "id", w.ID),
			checkKey("worker", "user_id", w.UserID))
	},
	normalize: func(w *data.Worker) {
		w.CreatedAt, w.RotatedAt, w.LastUsedAt = utc(w.CreatedAt), utc(w.RotatedAt), utc(w.LastUsedAt)
	},
}

var connections = &resource[data.Connection]{
	name:   "connection",
	bucket: bucketConnections,
	codec:  codec.Connection,
	key:    func(c *data.Connection) string { return join(c.UserID, c.Provider) },
	owner:  func(c *data.Connection) string { return c.UserID },
	// The key begins with the user id: the bucket is its own owner index.
	validate: func(c *data.Connection) error {
		return firstErr(
			checkKey("connection", "user_id", c.UserID),
			checkKey("connection", "provider", c.Provider))
	},
	normalize: func(c *data.Connection) {
		c.TokenExpiresAt, c.LastRefreshAt = utc(c.TokenExpiresAt), utc(c.LastRefreshAt)
		c.CreatedAt, c.UpdatedAt = utc(c.CreatedAt), utc(c.UpdatedAt)
	},
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

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
