package etcd

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// The record types. Each names its prefix, index, owner and lifetime; the
// generic code in resource.go does the rest.

var users = &resource[data.User]{
	name:      "user",
	prefix:    prefixUsers,
	codec:     codec.User,
	id:        func(u *data.User) string { return u.ID },
	validate:  records.ValidateUser,
	normalize: records.NormalizeUser,
}

var identities = &resource[data.Identity]{
	name:      "identity",
	prefix:    prefixIdentities,
	index:     idxIdentities,
	codec:     codec.Identity,
	id:        func(i *data.Identity) string { return join(i.Provider, i.Subject) },
	owner:     func(i *data.Identity) string { return i.UserID },
	movable:   true, // linking accounts moves an identity to another user
	validate:  records.ValidateIdentity,
	normalize: records.NormalizeIdentity,
}

var sessions = &resource[data.Session]{
	name:      "session",
	prefix:    prefixSessions,
	index:     idxSessions,
	codec:     codec.Session,
	secret:    true,
	id:        func(s *data.Session) string { return s.ID },
	owner:     func(s *data.Session) string { return s.UserID },
	expires:   func(s *data.Session) time.Time { return s.ExpiresAt },
	validate:  records.ValidateSession,
	normalize: records.NormalizeSession,
}

var oauthStates = &resource[data.OAuthState]{
	name:      "oauth state",
	prefix:    prefixOAuthStates,
	codec:     codec.OAuthState,
	secret:    true,
	id:        func(s *data.OAuthState) string { return s.ID },
	expires:   func(s *data.OAuthState) time.Time { return s.ExpiresAt },
	validate:  records.ValidateOAuthState,
	normalize: records.NormalizeOAuthState,
}

var deviceCodes = &resource[data.DeviceCode]{
	name:      "device code",
	prefix:    prefixDeviceCodes,
	codec:     codec.DeviceCode,
	secret:    true,
	id:        func(d *data.DeviceCode) string { return d.Code },
	expires:   func(d *data.DeviceCode) time.Time { return d.ExpiresAt },
	validate:  records.ValidateDeviceCode,
	normalize: records.NormalizeDeviceCode,
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
	name:      "refresh family",
	prefix:    prefixFamilies,
	index:     idxFamilies,
	codec:     codec.RefreshFamily,
	secret:    true,
	id:        func(f *data.RefreshFamily) string { return f.ID },
	owner:     func(f *data.RefreshFamily) string { return f.UserID },
	expires:   func(f *data.RefreshFamily) time.Time { return f.ExpiresAt },
	validate:  records.ValidateRefreshFamily,
	normalize: records.NormalizeRefreshFamily,
}

var workers = &resource[data.Worker]{
	name:      "worker",
	prefix:    prefixWorkers,
	index:     idxWorkers,
	codec:     codec.Worker,
	id:        func(w *data.Worker) string { return w.ID },
	owner:     func(w *data.Worker) string { return w.UserID },
	validate:  records.ValidateWorker,
	normalize: records.NormalizeWorker,
}

var connections = &resource[data.Connection]{
	name:   "connection",
	prefix: prefixConnections,
	codec:  codec.Connection,
	// The id begins with the user id: the record key is its own index.
	id:        func(c *data.Connection) string { return join(c.UserID, c.Provider) },
	owner:     func(c *data.Connection) string { return c.UserID },
	validate:  records.ValidateConnection,
	normalize: records.NormalizeConnection,
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
