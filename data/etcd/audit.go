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

// Reading the audit trail.
//
// Events are keyed by Seq (audit/<seq>, and a copy under
// idx/audit/<user>\x00<seq> for an event that names a user), so a query's
// Seq bounds and UserID are a key range, read in pages with etcd's limit.
//
// Newest first is not etcd's natural order. etcd sorts a range in memory
// after reading all of it (its limit is applied after the sort, see
// server/etcdserver/txn/range.go, rangeLimit), so one descending read of
// the whole trail would cost the server the whole trail however small the
// limit. ListAudit therefore reads backwards in windows of Seqs, each one
// range read sorted descending and limited: it starts at the audit counter
// (or BeforeSeq) with a window as wide as the events it needs and doubles
// the width, up to auditMaxWindow, each time a window is exhausted (a
// user's events are spread over the whole trail). The server then sorts at
// most one window per read, and a query reads about as many events as it
// returns, plus the empty windows it crosses.
//
// What a filter costs: UserID and the Seq bounds only narrow the range.
// Action and Since are checked here on the events read, in pages of at
// least auditPage, so a query with them transfers and decodes every event
// it passes over until Limit of them match: at worst the whole trail (or
// the user's part of it), a page per round trip.
const (
	auditPage      = 256
	auditMaxWindow = 1 << 16
)

// ListAudit returns the events q selects (see data.AuditQuery and above).
func (s *Store) ListAudit(ctx context.Context, q data.AuditQuery) ([]data.AuditEvent, error) {
	limit, err := records.AuditLimit(q)
	if err != nil {
		return nil, err
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	from, to, ok := records.AuditRange(&q)
	if !ok {
		return nil, nil
	}
	prefix := s.root + prefixAudit
	if q.UserID != "" {
		prefix = s.root + idxAuditUser + q.UserID + sep
	}
	r := auditReader{s: s, q: &q, prefix: prefix, limit: limit}
	if q.Newest {
		err = r.backward(ctx, from, to)
	} else {
		err = r.forward(ctx, from, to)
	}
	if err != nil {
		return nil, err
	}
	return r.out, nil
}

type auditReader struct {
	s      *Store
	q      *data.AuditQuery
	prefix string
	limit  int
	out    []data.AuditEvent
}

// page is how many events the next read asks for.
func (r *auditReader) page() int64 {
	need := r.limit - len(r.out)
	if records.AuditFiltered(r.q) {
		return int64(max(need, auditPage))
	}
	return int64(need)
}

// take decodes and keeps the events of one read that match, up to the
// limit.
func (r *auditReader) take(kvs []*mvccpb.KeyValue) error {
	for _, kv := range kvs {
		if len(r.out) == r.limit {
			return nil
		}
		var ev data.AuditEvent
		if err := codec.AuditEvent.Decode(kv.Value, &ev); err != nil {
			return fmt.Errorf("etcd: audit event %s: stored record cannot be decoded (%v): restore the store from a backup", kv.Key, err)
		}
		if records.AuditMatch(r.q, &ev) {
			r.out = append(r.out, ev)
		}
	}
	return nil
}

// forward reads [from, to] in ascending order, a page at a time.
func (r *auditReader) forward(ctx context.Context, from, to uint64) error {
	start, end := r.prefix+seqKey(from), r.prefix+seqKey(to)+"\x00"
	for len(r.out) < r.limit {
		resp, err := r.s.client.Get(ctx, start, clientv3.WithRange(end), clientv3.WithLimit(r.page()))
		if err != nil {
			return r.s.fail(ctx, "listing audit events", err)
		}
		if err := r.take(resp.Kvs); err != nil {
			return err
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return nil
}

// backward reads [from, to] in descending order, in windows (see above).
func (r *auditReader) backward(ctx context.Context, from, to uint64) error {
	resp, err := r.s.client.Get(ctx, r.s.root+keyAuditSeq)
	if err != nil {
		return r.s.fail(ctx, "listing audit events", err)
	}
	if kv := firstKV(resp.Kvs); kv != nil {
		last, err := parseSeq(kv.Value)
		if err != nil {
			return fmt.Errorf("etcd: audit sequence %s holds %q, not a number: set it to the highest Seq stored", r.s.root+keyAuditSeq, kv.Value)
		}
		to = min(to, last)
	} else {
		return nil // nothing appended or imported yet
	}
	width := uint64(r.page())
	for hi := to; hi >= from && len(r.out) < r.limit; {
		lo := from
		if hi-from >= width {
			lo = hi - width + 1
		}
		resp, err := r.s.client.Get(ctx, r.prefix+seqKey(lo), clientv3.WithRange(r.prefix+seqKey(hi)+"\x00"),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(r.page()))
		if err != nil {
			return r.s.fail(ctx, "listing audit events", err)
		}
		if err := r.take(resp.Kvs); err != nil {
			return err
		}
		if resp.More && len(resp.Kvs) > 0 {
			// The window holds more: go on below the last event read.
			seq, err := r.seqOf(resp.Kvs[len(resp.Kvs)-1].Key)
			if err != nil {
				return err
			}
			hi = seq - 1
			continue
		}
		if lo == from {
			return nil
		}
		hi = lo - 1
		width = min(2*width, auditMaxWindow)
	}
	return nil
}

// seqOf is the Seq in an audit key under r.prefix.
func (r *auditReader) seqOf(key []byte) (uint64, error) {
	seq, err := strconv.ParseUint(string(key[len(r.prefix):]), 16, 64)
	if err != nil || len(key) != len(r.prefix)+16 {
		return 0, fmt.Errorf("etcd: audit key %q does not end in a Seq of 16 hex digits: restore the store from a backup", key)
	}
	return seq, nil
}
