package etcd

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
)

// The record types. Each names its prefix, index, owner and lifetime; the
// generic code in resource.go does the rest.

var users = &resource[data.User]{
	name:     "user",
	prefix:   prefixUsers,
	codec:    codec.User,
	id:       func(u *data.User) string { return u.ID },
	validate: func(u *data.User) error { return checkKey("user", "id", u.ID) },
	normalize: func(u *data.User) {
		u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	},
}

var identities = &resource[data.Identity]{
	name:    "identity",
	prefix:  prefixIdentities,
	index:   idxIdentities,
	codec:   codec.Identity,
	id:      func(i *data.Identity) string { return join(i.Provider, i.Subject) },
	owner:   func(i *data.Identity) string { return i.UserID },
	movable: true, // linking accounts moves an identity to another user
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
	name:    "session",
	prefix:  prefixSessions,
	index:   idxSessions,
	codec:   codec.Session,
	secret:  true,
	id:      func(s *data.Session) string { return s.ID },
	owner:   func(s *data.Session) string { return s.UserID },
	expires: func(s *data.Session) time.Time { return s.ExpiresAt },
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
	name:    "oauth state",
	prefix:  prefixOAuthStates,
	codec:   codec.OAuthState,
	secret:  true,
	id:      func(s *data.OAuthState) string { return s.ID },
	expires: func(s *data.OAuthState) time.Time { return s.ExpiresAt },
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
	name:    "device code",
	prefix:  prefixDeviceCodes,
	codec:   codec.DeviceCode,
	secret:  true,
	id:      func(d *data.DeviceCode) string { return d.Code },
	expires: func(d *data.DeviceCode) time.Time { return d.ExpiresAt },
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
	// The user code index entry shares the device code's lease. A
	// device code's user code never changes, and while it lives no other
	// device code can claim the user code, so an update may rewrite it.
	updateHook: func(s *Store, d *data.DeviceCode, lease clientv3.LeaseID) []clientv3.Op {
		if d.UserCode == "" {
			return nil
		}
		return []clientv3.Op{clientv3.OpPut(s.root+idxUserCodes+d.UserCode, d.Code, clientv3.WithLease(lease))}
	},
}

func init() {
	// Set here: the hook reads deviceCodes, which would make the
	// variable's initialisation refer to itself.
	deviceCodes.createHook = claimUserCode
}

// claimUserCode refuses a device code whose user code belongs to another
// live device code, and otherwise points the user code at the new one,
// guarded by the index entry and the holder it read.
func claimUserCode(s *Store, ctx context.Context, d *data.DeviceCode, _ *found[data.DeviceCode], lease clientv3.LeaseID) ([]clientv3.Cmp, []clientv3.Op, error) {
	if d.UserCode == "" {
		return nil, nil, nil
	}
	key := s.root + idxUserCodes + d.UserCode
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, nil, s.fail(ctx, "reading a user code", err)
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", 0)}
	if kv := firstKV(resp.Kvs); kv != nil {
		cmps[0] = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
		if holder := string(kv.Value); holder != d.Code {
			other, err := deviceCodes.locate(s, ctx, holder)
			if err != nil {
				return nil, nil, err
			}
			if other.ok && other.v.UserCode == d.UserCode && deviceCodes.live(&other.v, s.now()) {
				return nil, nil, fmt.Errorf("device code: its user code is taken by a live device code: %w", data.ErrAlreadyExists)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(deviceCodes.key(s, "", holder)), "=", other.rev))
		}
	}
	return cmps, []clientv3.Op{clientv3.OpPut(key, d.Code, clientv3.WithLease(lease))}, nil
}

var refreshFamilies = &resource[data.RefreshFamily]{
	name:    "refresh family",
	prefix:  prefixFamilies,
	index:   idxFamilies,
	codec:   codec.RefreshFamily,
	secret:  true,
	id:      func(f *data.RefreshFamily) string { return f.ID },
	owner:   func(f *data.RefreshFamily) string { return f.UserID },
	expires: func(f *data.RefreshFamily) time.Time { return f.ExpiresAt },
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
	name:   "worker",
	prefix: prefixWorkers,
	index:  idxWorkers,
	codec:  codec.Worker,
	id:     func(w *data.Worker) string { return w.ID },
	owner:  func(w *data.Worker) string { return w.UserID },
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
	prefix: prefixConnections,
	codec:  codec.Connection,
	// The id begins with the user id: the record key is its own index.
	id:    func(c *data.Connection) string { return join(c.UserID, c.Provider) },
	owner: func(c *data.Connection) string { return c.UserID },
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

// ownedPrefixes are the record prefixes DeleteUser clears for a user, with
// the index each one's ids are in ("" for none).
var ownedPrefixes = []struct{ prefix, index string }{
	{prefixIdentities, idxIdentities},
	{prefixSessions, idxSessions},
	{prefixFamilies, idxFamilies},
	{prefixWorkers, idxWorkers},
	{prefixConnections, ""},
}
