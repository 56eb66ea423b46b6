package etcd

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

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
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	return r.scan(s, ctx, s.root+r.prefix, s.now()) // key order
}

// ImportConnection stores c as CreateConnection does, keeping c.Version.
func (s *Store) ImportConnection(ctx context.Context, c data.Connection) error {
	if err := data.CheckImportConnection(c); err != nil {
		return err
	}
	return connections.create(s, ctx, c)
}

// importChunk is how many audit events one ImportAudit transaction stores:
// a compare and up to two puts each, plus the counter, within etcd's
// default limit of 128 operations.
const importChunk = 40

// ImportAudit stores events with their Seq and Time, importChunk at a
// time. Each transaction is guarded by the audit counter's mod revision and
// by the absence of the events' keys, and raises the counter to the highest
// Seq stored, so AppendAudit (on any replica) continues above it.
func (s *Store) ImportAudit(ctx context.Context, events []data.AuditEvent) error {
	if err := data.CheckImportAudit(events, records.CheckKey); err != nil {
		return err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	const what = "importing audit events"
	unlock, err := s.lock(ctx, what, keyAuditSeq) // AppendAudit's stripe
	if err != nil {
		return err
	}
	defer unlock()
	for len(events) > 0 {
		n := min(len(events), importChunk)
		if err := s.importAuditChunk(ctx, what, events[:n]); err != nil {
			return err
		}
		events = events[n:]
	}
	return nil
}

func (s *Store) importAuditChunk(ctx context.Context, what string, events []data.AuditEvent) error {
	counter := s.root + keyAuditSeq
	return s.retry(ctx, what, func() (bool, error) {
		resp, err := s.client.Get(ctx, counter)
		if err != nil {
			return false, s.fail(ctx, what, err)
		}
		var high uint64
		var rev int64
		if kv := firstKV(resp.Kvs); kv != nil {
			if high, err = parseSeq(kv.Value); err != nil {
				return false, fmt.Errorf("etcd: audit sequence %s holds %q, not a number: set it to the highest Seq stored", counter, kv.Value)
			}
			rev = kv.ModRevision
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(counter), "=", rev)}
		var ops []clientv3.Op
		for _, e := range events {
			e.Time = records.UTC(e.Time)
			key := s.root + prefixAudit + seqKey(e.Seq)
			raw := string(codec.AuditEvent.Encode(&e))
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", 0))
			ops = append(ops, clientv3.OpPut(key, raw))
			if e.UserID != "" {
				ops = append(ops, clientv3.OpPut(s.root+idxAuditUser+e.UserID+sep+seqKey(e.Seq), raw))
			}
			high = max(high, e.Seq)
		}
		value := strconv.FormatUint(high, 10)
		ops = append(ops, clientv3.OpPut(counter, value))
		txn, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return false, s.fail(ctx, what, err)
		}
		if txn.Succeeded {
			s.auditSeq.Store(&mvccpb.KeyValue{Value: []byte(value), ModRevision: txn.Header.Revision})
			return true, nil
		}
		// The counter moved (another replica appended: try again) or an
		// event is already stored.
		for _, e := range events {
			got, err := s.client.Get(ctx, s.root+prefixAudit+seqKey(e.Seq), clientv3.WithCountOnly())
			if err != nil {
				return false, s.fail(ctx, what, err)
			}
			if got.Count > 0 {
				return false, fmt.Errorf("audit event %d: %w", e.Seq, data.ErrAlreadyExists)
			}
		}
		return false, nil
	})
}
