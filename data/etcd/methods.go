package etcd

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// Users

func (s *Store) CreateUser(ctx context.Context, u data.User) error {
	return users.create(s, ctx, u)
}

func (s *Store) GetUser(ctx context.Context, id string) (data.User, error) {
	if err := records.CheckKey("user", "id", id); err != nil {
		return data.User{}, err
	}
	v, err := users.get(s, ctx, id)
	if err == nil {
		s.handedUsers.add(v.ID, time.Time{}, s.now())
	}
	return v, err
}

func (s *Store) UpdateUser(ctx context.Context, id string, fn func(data.User) (data.User, error)) (data.User, error) {
	if err := records.CheckKey("user", "id", id); err != nil {
		return data.User{}, err
	}
	v, err := users.update(s, ctx, id, fn, nil, nil)
	if err == nil {
		s.handedUsers.add(v.ID, time.Time{}, s.now())
	}
	return v, err
}

// DeleteUser deletes the user and everything they own in one transaction
// of six operations, whatever the number of records: the user key and one
// range delete per owned prefix (records are keyed by owner first). The
// index entries of the deleted records are removed afterwards, in batches;
// until then they name records that no longer exist, which every lookup
// treats as not found (see the package documentation).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := records.CheckKey("user", "id", id); err != nil {
		return err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	what := fmt.Sprintf("deleting user %q", id)
	userKey := s.root + prefixUsers + id
	ops := []clientv3.Op{clientv3.OpDelete(userKey)}
	for _, p := range ownedPrefixes {
		ops = append(ops, clientv3.OpDelete(s.root+p.prefix+id+sep, clientv3.WithPrefix(), clientv3.WithPrevKV()))
	}
	var resp *clientv3.TxnResponse
	maybeDeleted := false // see ambiguous.go
	err = s.retry(ctx, what, func() (bool, error) {
		r, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(userKey), ">", 0)).
			Then(ops...).Commit()
		if err != nil {
			err = s.writeErr(ctx, what, err)
			maybeDeleted = maybeDeleted || isAmbiguous(err)
			return false, err
		}
		if !r.Succeeded && !maybeDeleted {
			return false, fmt.Errorf("user %q: %w", id, data.ErrNotFound)
		}
		resp = r
		return true, nil
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		// Deleted by an attempt whose answer was lost, so which records
		// went with it is unknown: their index entries stay, naming
		// records that do not exist, which lookups treat as not found.
		return nil
	}
	var stale []string // index keys of the deleted records
	for i, p := range ownedPrefixes {
		if p.index == "" {
			continue
		}
		for _, kv := range resp.Responses[i+1].GetResponseDeleteRange().PrevKvs {
			recID := strings.TrimPrefix(string(kv.Key), s.root+p.prefix+id+sep)
			stale = append(stale, s.root+p.index+recID)
			s.owners.forget(p.index + recID)
		}
	}
	s.dropIndexEntries(ctx, id, stale)
	return nil
}

// indexBatch is how many index entries one clean-up transaction removes:
// a compare and a delete each, well inside etcd's default limit of 128
// operations per transaction.
const indexBatch = 60

// dropIndexEntries deletes the index entries in keys that still name owner.
// Failures are logged, not returned: the user is gone already, and a stale
// entry is harmless (it names a record that does not exist, and a create
// of the same id replaces it).
func (s *Store) dropIndexEntries(ctx context.Context, owner string, keys []string) {
	for len(keys) > 0 {
		n := min(len(keys), indexBatch)
		batch := keys[:n]
		keys = keys[n:]
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, k := range batch {
			cmps = append(cmps, clientv3.Compare(clientv3.Value(k), "=", owner))
			ops = append(ops, clientv3.OpDelete(k))
		}
		resp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err == nil && !resp.Succeeded {
			// An id passed to another user meanwhile: one at a time.
			for _, k := range batch {
				_, err = s.client.Txn(ctx).If(clientv3.Compare(clientv3.Value(k), "=", owner)).Then(clientv3.OpDelete(k)).Commit()
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			s.logger.Warn("etcd: could not remove the index entries of a deleted user's records; they are harmless",
				"user", owner, "left", len(keys)+n, "err", err)
			return
		}
	}
}

func (s *Store) ListUsers(ctx context.Context) ([]data.User, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	out, err := users.scan(s, ctx, s.root+prefixUsers, time.Time{})
	now := s.now()
	for _, v := range out {
		s.handedUsers.add(v.ID, time.Time{}, now)
	}
	return out, err
}

// Identities

func (s *Store) CreateIdentity(ctx context.Context, id data.Identity) error {
	return identities.create(s, ctx, id)
}

func (s *Store) GetIdentity(ctx context.Context, provider, subject string) (data.Identity, error) {
	if err := records.CheckIdentityKey(provider, subject); err != nil {
		return data.Identity{}, err
	}
	return identities.get(s, ctx, join(provider, subject))
}

// UpdateIdentity changes an identity. fn may set another UserID (linking
// accounts), which must name an existing user.
func (s *Store) UpdateIdentity(ctx context.Context, provider, subject string, fn func(data.Identity) (data.Identity, error)) (data.Identity, error) {
	if err := records.CheckIdentityKey(provider, subject); err != nil {
		return data.Identity{}, err
	}
	return identities.update(s, ctx, join(provider, subject), fn, nil, nil)
}

func (s *Store) DeleteIdentity(ctx context.Context, provider, subject string) error {
	if err := records.CheckIdentityKey(provider, subject); err != nil {
		return err
	}
	return identities.delete(s, ctx, join(provider, subject))
}

func (s *Store) ListIdentities(ctx context.Context, userID string) ([]data.Identity, error) {
	if userID == "" {
		ctx, cancel, err := s.begin(ctx)
		if err != nil {
			return nil, err
		}
		defer cancel()
		return identities.scan(s, ctx, s.root+prefixIdentities, time.Time{}) // key order: user, provider, subject
	}
	if err := records.CheckKey("identity", "user_id", userID); err != nil {
		return nil, err
	}
	return identities.owned(s, ctx, userID) // key order: provider, subject
}

// Sessions

func (s *Store) CreateSession(ctx context.Context, sess data.Session) error {
	return sessions.create(s, ctx, sess)
}

func (s *Store) GetSession(ctx context.Context, id string) (data.Session, error) {
	if err := records.CheckKey("session", "id", id); err != nil {
		return data.Session{}, err
	}
	v, err := sessions.get(s, ctx, id)
	if err == nil {
		s.handedSessions.add(v.ID, v.ExpiresAt, s.now())
	}
	return v, err
}

func (s *Store) UpdateSession(ctx context.Context, id string, fn func(data.Session) (data.Session, error)) (data.Session, error) {
	if err := records.CheckKey("session", "id", id); err != nil {
		return data.Session{}, err
	}
	v, err := sessions.update(s, ctx, id, fn, nil, nil)
	if err == nil {
		s.handedSessions.add(v.ID, v.ExpiresAt, s.now())
	}
	return v, err
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := records.CheckKey("session", "id", id); err != nil {
		return err
	}
	return sessions.delete(s, ctx, id)
}

func (s *Store) ListSessions(ctx context.Context, userID string) ([]data.Session, error) {
	if err := records.CheckKey("session", "user_id", userID); err != nil {
		return nil, err
	}
	out, err := sessions.owned(s, ctx, userID)
	now := s.now()
	for _, v := range out {
		s.handedSessions.add(v.ID, v.ExpiresAt, now)
	}
	byCreated(out, func(v *data.Session) time.Time { return v.CreatedAt }, sessions.id)
	return out, err
}

// OAuth states

func (s *Store) CreateOAuthState(ctx context.Context, st data.OAuthState) error {
	return oauthStates.create(s, ctx, st)
}

func (s *Store) GetOAuthState(ctx context.Context, id string) (data.OAuthState, error) {
	if err := records.CheckKey("oauth state", "id", id); err != nil {
		return data.OAuthState{}, err
	}
	return oauthStates.get(s, ctx, id)
}

// ConsumeOAuthState deletes the state in a transaction guarded by the mod
// revision it read: of concurrent consumers, one deletes it and the others
// find it gone.
func (s *Store) ConsumeOAuthState(ctx context.Context, id string) (data.OAuthState, error) {
	if err := records.CheckKey("oauth state", "id", id); err != nil {
		return data.OAuthState{}, err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return data.OAuthState{}, err
	}
	defer cancel()
	var out data.OAuthState
	unlock, err := s.lock(ctx, "consuming an oauth state", prefixOAuthStates+id)
	if err != nil {
		return data.OAuthState{}, err
	}
	defer unlock()
	// The marker names this consumer, in case the answer to its delete is
	// lost (see ambiguous.go).
	marker, nonce := s.root+prefixConsumed+id, rand.Text()
	maybeConsumed := false
	err = s.retry(ctx, "consuming an oauth state", func() (bool, error) {
		f, err := oauthStates.locate(s, ctx, id)
		if err != nil {
			return false, err
		}
		if !f.ok || !oauthStates.live(&f.v, s.now()) {
			if maybeConsumed {
				resp, err := s.client.Get(ctx, marker)
				if err != nil {
					return false, s.fail(ctx, "consuming an oauth state", err)
				}
				if kv := firstKV(resp.Kvs); kv != nil && string(kv.Value) == nonce {
					return true, nil // out is the state this consumer deleted
				}
			}
			return false, oauthStates.errNotFound(id)
		}
		out = f.v
		_, opts, err := oauthStates.putOpts(s, ctx, &f.v) // the marker ends with the state
		if err != nil {
			return false, err
		}
		ok, err := s.commit(ctx, "consuming an oauth state",
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(f.key), "=", f.rev)},
			[]clientv3.Op{clientv3.OpDelete(f.key), clientv3.OpPut(marker, nonce, opts...)})
		maybeConsumed = maybeConsumed || isAmbiguous(err)
		return ok, err
	})
	if err != nil {
		return data.OAuthState{}, err
	}
	return out, nil
}

// Device codes

func (s *Store) CreateDeviceCode(ctx context.Context, d data.DeviceCode) error {
	return deviceCodes.create(s, ctx, d)
}

func (s *Store) GetDeviceCode(ctx context.Context, code string) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "code", code); err != nil {
		return data.DeviceCode{}, err
	}
	return deviceCodes.get(s, ctx, code)
}

func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "user_code", userCode); err != nil {
		return data.DeviceCode{}, err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return data.DeviceCode{}, err
	}
	defer cancel()
	resp, err := s.client.Get(ctx, s.root+idxUserCodes+userCode)
	if err != nil {
		return data.DeviceCode{}, s.fail(ctx, "reading a user code", err)
	}
	notFound := fmt.Errorf("device code for user code: %w", data.ErrNotFound)
	kv := firstKV(resp.Kvs)
	if kv == nil {
		return data.DeviceCode{}, notFound
	}
	f, err := deviceCodes.locate(s, ctx, string(kv.Value))
	if err != nil {
		return data.DeviceCode{}, err
	}
	if !f.ok || f.v.UserCode != userCode || !deviceCodes.live(&f.v, s.now()) {
		return data.DeviceCode{}, notFound
	}
	return f.v, nil
}

// UpdateDeviceCode changes a device code that has not been consumed. The
// store keeps ConsumedAt (ConsumeDeviceCode sets it) and the user code.
func (s *Store) UpdateDeviceCode(ctx context.Context, code string, fn func(data.DeviceCode) (data.DeviceCode, error)) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "code", code); err != nil {
		return data.DeviceCode{}, err
	}
	return deviceCodes.update(s, ctx, code, fn,
		records.CheckUnconsumed, records.KeepDeviceCodeFields)
}

// ConsumeDeviceCode sets ConsumedAt in a transaction guarded by the mod
// revision it read: of concurrent consumers one wins, and the others read
// the consumed record on their next attempt and get data.ErrConsumed.
func (s *Store) ConsumeDeviceCode(ctx context.Context, code string, check func(data.DeviceCode) error) (data.DeviceCode, error) {
	if err := records.CheckKey("device code", "code", code); err != nil {
		return data.DeviceCode{}, err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return data.DeviceCode{}, err
	}
	defer cancel()
	var out data.DeviceCode
	unlock, err := s.lock(ctx, "consuming a device code", prefixDeviceCodes+code)
	if err != nil {
		return data.DeviceCode{}, err
	}
	defer unlock()
	var mine written[data.DeviceCode] // see ambiguous.go
	err = s.retry(ctx, "consuming a device code", func() (bool, error) {
		now := s.now()
		f, err := deviceCodes.locate(s, ctx, code)
		if err != nil {
			return false, err
		}
		if !f.ok || !deviceCodes.live(&f.v, now) {
			return false, deviceCodes.errNotFound(code)
		}
		if v, ok := mine.find(f.raw); ok {
			out = v // consumed by this caller's attempt whose answer was lost
			return true, nil
		}
		if err := records.CheckUnconsumed(&f.v); err != nil {
			return false, err
		}
		if err := check(f.v); err != nil {
			return false, err
		}
		nd := f.v
		nd.ConsumedAt = records.UTC(now)
		out = nd
		raw := codec.DeviceCode.Encode(&nd)
		// The record keeps its lease (its ExpiresAt is unchanged).
		ok, err := s.commit(ctx, "consuming a device code",
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(f.key), "=", f.rev)},
			[]clientv3.Op{clientv3.OpPut(f.key, string(raw), clientv3.WithIgnoreLease())})
		mine.note(err, raw, nd)
		return ok, err
	})
	if err != nil {
		return data.DeviceCode{}, err
	}
	return out, nil
}

// Refresh families

func (s *Store) CreateRefreshFamily(ctx context.Context, f data.RefreshFamily) error {
	return refreshFamilies.create(s, ctx, f)
}

func (s *Store) GetRefreshFamily(ctx context.Context, id string) (data.RefreshFamily, error) {
	if err := records.CheckKey("refresh family", "id", id); err != nil {
		return data.RefreshFamily{}, err
	}
	return refreshFamilies.get(s, ctx, id)
}

func (s *Store) UpdateRefreshFamily(ctx context.Context, id string, fn func(data.RefreshFamily) (data.RefreshFamily, error)) (data.RefreshFamily, error) {
	if err := records.CheckKey("refresh family", "id", id); err != nil {
		return data.RefreshFamily{}, err
	}
	return refreshFamilies.update(s, ctx, id, fn, nil, nil)
}

func (s *Store) DeleteRefreshFamily(ctx context.Context, id string) error {
	if err := records.CheckKey("refresh family", "id", id); err != nil {
		return err
	}
	return refreshFamilies.delete(s, ctx, id)
}

func (s *Store) ListRefreshFamilies(ctx context.Context, userID string) ([]data.RefreshFamily, error) {
	if err := records.CheckKey("refresh family", "user_id", userID); err != nil {
		return nil, err
	}
	out, err := refreshFamilies.owned(s, ctx, userID)
	byCreated(out, func(v *data.RefreshFamily) time.Time { return v.CreatedAt }, refreshFamilies.id)
	return out, err
}

// Workers

func (s *Store) CreateWorker(ctx context.Context, w data.Worker) error {
	return workers.create(s, ctx, w)
}

func (s *Store) GetWorker(ctx context.Context, id string) (data.Worker, error) {
	if err := records.CheckKey("worker", "id", id); err != nil {
		return data.Worker{}, err
	}
	v, err := workers.get(s, ctx, id)
	if err == nil {
		s.handedWorkers.add(v.ID, time.Time{}, s.now())
	}
	return v, err
}

func (s *Store) UpdateWorker(ctx context.Context, id string, fn func(data.Worker) (data.Worker, error)) (data.Worker, error) {
	if err := records.CheckKey("worker", "id", id); err != nil {
		return data.Worker{}, err
	}
	v, err := workers.update(s, ctx, id, fn, nil, nil)
	if err == nil {
		s.handedWorkers.add(v.ID, time.Time{}, s.now())
	}
	return v, err
}

func (s *Store) DeleteWorker(ctx context.Context, id string) error {
	if err := records.CheckKey("worker", "id", id); err != nil {
		return err
	}
	return workers.delete(s, ctx, id)
}

func (s *Store) ListWorkers(ctx context.Context, userID string) ([]data.Worker, error) {
	if err := records.CheckKey("worker", "user_id", userID); err != nil {
		return nil, err
	}
	out, err := workers.owned(s, ctx, userID)
	now := s.now()
	for _, v := range out {
		s.handedWorkers.add(v.ID, time.Time{}, now)
	}
	byCreated(out, func(v *data.Worker) time.Time { return v.CreatedAt }, workers.id)
	return out, err
}

// Connections

// CreateConnection stores c with Version 1, whatever c.Version says.
func (s *Store) CreateConnection(ctx context.Context, c data.Connection) error {
	c.Version = 1
	return connections.create(s, ctx, c)
}

func (s *Store) GetConnection(ctx context.Context, userID, provider string) (data.Connection, error) {
	if err := records.CheckConnectionKey(userID, provider); err != nil {
		return data.Connection{}, err
	}
	return connections.get(s, ctx, join(userID, provider))
}

func (s *Store) UpdateConnection(ctx context.Context, userID, provider string, fn func(data.Connection) (data.Connection, error)) (data.Connection, error) {
	if err := records.CheckConnectionKey(userID, provider); err != nil {
		return data.Connection{}, err
	}
	return connections.update(s, ctx, join(userID, provider), fn, nil,
		func(old, nv *data.Connection) error {
			nv.Version = old.Version + 1
			return nil
		})
}

func (s *Store) DeleteConnection(ctx context.Context, userID, provider string) error {
	if err := records.CheckConnectionKey(userID, provider); err != nil {
		return err
	}
	return connections.delete(s, ctx, join(userID, provider))
}

func (s *Store) ListConnections(ctx context.Context, userID string) ([]data.Connection, error) {
	if userID == "" {
		ctx, cancel, err := s.begin(ctx)
		if err != nil {
			return nil, err
		}
		defer cancel()
		return connections.scan(s, ctx, s.root+prefixConnections, time.Time{}) // key order: user, provider
	}
	if err := records.CheckKey("connection", "user_id", userID); err != nil {
		return nil, err
	}
	return connections.owned(s, ctx, userID)
}

// Audit

// DefaultAuditLimit is the number of events ListAudit returns when the query
// sets no limit.
const DefaultAuditLimit = records.DefaultAuditLimit

// AppendAudit takes the next Seq from a counter key and stores the event
// in the same transaction, guarded by the counter's mod revision; a lost
// race is retried with the counter value the failed transaction returned.
func (s *Store) AppendAudit(ctx context.Context, e data.AuditEvent) (data.AuditEvent, error) {
	if err := records.CheckAuditEvent(&e); err != nil {
		return data.AuditEvent{}, err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return data.AuditEvent{}, err
	}
	defer cancel()
	ev := e
	if ev.Time.IsZero() {
		ev.Time = s.now()
	}
	ev.Time = records.UTC(ev.Time)
	const what = "appending an audit event"
	counter := s.root + keyAuditSeq
	unlock, err := s.lock(ctx, what, keyAuditSeq)
	if err != nil {
		return data.AuditEvent{}, err
	}
	defer unlock()
	kv := s.auditSeq.Load() // the counter as last seen
	read := kv == nil
	var mine written[uint64] // Seq of each attempt whose answer was lost (ambiguous.go)
	err = s.retry(ctx, what, func() (bool, error) {
		for i, seq := range mine.vals {
			resp, err := s.client.Get(ctx, s.root+prefixAudit+seqKey(seq))
			if err != nil {
				return false, s.fail(ctx, what, err)
			}
			if kv := firstKV(resp.Kvs); kv != nil && bytes.Equal(kv.Value, mine.raws[i]) {
				ev.Seq = seq // appended by that attempt; the counter is read afresh next time
				s.auditSeq.Store(nil)
				return true, nil
			}
		}
		if read {
			resp, err := s.client.Get(ctx, counter)
			if err != nil {
				return false, s.fail(ctx, what, err)
			}
			kv = firstKV(resp.Kvs)
		}
		var last uint64
		var rev int64
		if kv != nil {
			var err error
			if last, err = parseSeq(kv.Value); err != nil {
				return false, fmt.Errorf("etcd: audit sequence %s holds %q, not a number: set it to the highest Seq stored", counter, kv.Value)
			}
			rev = kv.ModRevision
		}
		ev.Seq = last + 1
		raw := codec.AuditEvent.Encode(&ev)
		ops := []clientv3.Op{
			clientv3.OpPut(counter, strconv.FormatUint(ev.Seq, 10)),
			clientv3.OpPut(s.root+prefixAudit+seqKey(ev.Seq), string(raw)),
		}
		if ev.UserID != "" {
			ops = append(ops, clientv3.OpPut(s.root+idxAuditUser+ev.UserID+sep+seqKey(ev.Seq), string(raw)))
		}
		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(counter), "=", rev)).
			Then(ops...).
			Else(clientv3.OpGet(counter)).Commit()
		if err != nil {
			// A member that went away: try again, after looking for
			// this attempt's event.
			err = s.writeErr(ctx, what, err)
			mine.note(err, raw, ev.Seq)
			return false, err
		}
		if !resp.Succeeded {
			kv, read = firstKV(resp.Responses[0].GetResponseRange().Kvs), false
			return false, nil
		}
		s.auditSeq.Store(&mvccpb.KeyValue{Value: []byte(strconv.FormatUint(ev.Seq, 10)), ModRevision: resp.Header.Revision})
		return true, nil
	})
	if err != nil {
		return data.AuditEvent{}, err
	}
	return ev, nil
}

// Collector

// collectPage is how many records CollectExpired reads at a time, and
// collectBatch how many it deletes in one transaction (a compare and up to
// two deletes each, inside etcd's default limit of 128 operations).
const (
	collectPage  = 1000
	collectBatch = 40
)

// CollectExpired deletes every record whose ExpiresAt is at or before now.
// It reads each expiring prefix a page at a time and deletes the expired
// records in transactions guarded by the mod revision it read, so a record
// updated meanwhile (its lifetime extended) is left alone. Leases remove
// records in the background too; this is what makes the count exact and
// the deletion prompt.
func (s *Store) CollectExpired(ctx context.Context, now time.Time) (data.CollectStats, error) {
	var st data.CollectStats
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return st, err
	}
	defer cancel()
	kinds := []struct {
		prefix, index string
		count         *int
		expires       func([]byte) (time.Time, error)
	}{
		{prefixSessions, idxSessions, &st.Sessions, expiryOf(codec.Session, func(v *data.Session) time.Time { return v.ExpiresAt })},
		{prefixOAuthStates, "", &st.OAuthStates, expiryOf(codec.OAuthState, func(v *data.OAuthState) time.Time { return v.ExpiresAt })},
		{prefixDeviceCodes, "", &st.DeviceCodes, expiryOf(codec.DeviceCode, func(v *data.DeviceCode) time.Time { return v.ExpiresAt })},
		{prefixFamilies, idxFamilies, &st.RefreshFamilies, expiryOf(codec.RefreshFamily, func(v *data.RefreshFamily) time.Time { return v.ExpiresAt })},
	}
	for _, k := range kinds {
		prefix := s.root + k.prefix
		end := clientv3.GetPrefixRangeEnd(prefix)
		from := prefix
		for {
			resp, err := s.client.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(collectPage))
			if err != nil {
				return st, s.fail(ctx, "collecting expired records", err)
			}
			var expired []*mvccpb.KeyValue
			for _, kv := range resp.Kvs {
				exp, err := k.expires(kv.Value)
				if err != nil {
					return st, fmt.Errorf("etcd: %s: stored record cannot be decoded (%v): delete it or restore the store from a backup", kv.Key, err)
				}
				if !now.Before(exp) {
					expired = append(expired, kv)
				}
			}
			n, err := s.deleteExpired(ctx, prefix, k.index, expired)
			*k.count += n
			if err != nil {
				return st, err
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	return st, nil
}

func expiryOf[T any](c codec.Codec[T], expires func(*T) time.Time) func([]byte) (time.Time, error) {
	return func(raw []byte) (time.Time, error) {
		var v T
		if err := c.Decode(raw, &v); err != nil {
			return time.Time{}, err
		}
		return expires(&v), nil
	}
}

// deleteExpired deletes the records in kvs (and, for indexed ones, their
// index entries) unless they changed since they were read, and returns how
// many it deleted.
func (s *Store) deleteExpired(ctx context.Context, prefix, index string, kvs []*mvccpb.KeyValue) (int, error) {
	ops := func(kv *mvccpb.KeyValue) ([]clientv3.Cmp, []clientv3.Op) {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)}
		ops := []clientv3.Op{clientv3.OpDelete(string(kv.Key))}
		if index != "" {
			// owner \x00 id: the index entry is id's, and still names
			// owner while the record exists.
			rest := strings.TrimPrefix(string(kv.Key), prefix)
			if i := strings.IndexByte(rest, 0); i >= 0 {
				ops = append(ops, clientv3.OpDelete(s.root+index+rest[i+1:]))
			}
		}
		return cmps, ops
	}
	deleted := 0
	for len(kvs) > 0 {
		n := min(len(kvs), collectBatch)
		batch := kvs[:n]
		kvs = kvs[n:]
		var cmps []clientv3.Cmp
		var all []clientv3.Op
		for _, kv := range batch {
			c, o := ops(kv)
			cmps, all = append(cmps, c...), append(all, o...)
		}
		ok, err := s.commit(ctx, "collecting expired records", cmps, all)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted += n
			continue
		}
		// One of them changed: one at a time, skipping the changed ones.
		for _, kv := range batch {
			c, o := ops(kv)
			ok, err := s.commit(ctx, "collecting expired records", c, o)
			if err != nil {
				return deleted, err
			}
			if ok {
				deleted++
			}
		}
	}
	return deleted, nil
}
