package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/codec"
	"github.com/vintner/arbor/data/internal/records"
)

// ListAudit walks the audit bucket (keyed by Seq), or idx_audit_user for a
// query with a UserID, with one cursor from the query's Seq bound: forward
// from AfterSeq, or, for Newest, backward from BeforeSeq. It stops at the
// other bound or once Limit events matched.
//
// What a filter costs: UserID and the Seq bounds narrow the range walked and
// cost nothing beyond the events returned. Action and Since are checked on
// each event walked, so a query with them decodes every event it passes
// over until Limit of them match: at worst the whole trail (or the user's
// part of it), all from the memory-mapped file in one read transaction.
func (s *Store) ListAudit(ctx context.Context, q data.AuditQuery) ([]data.AuditEvent, error) {
	limit, err := records.AuditLimit(q)
	if err != nil {
		return nil, err
	}
	var out []data.AuditEvent
	err = s.view(ctx, func(tx *bolt.Tx) error {
		out = nil
		from, to, ok := records.AuditRange(&q)
		if !ok {
			return nil
		}
		events := tx.Bucket([]byte(bucketAudit))
		var prefix []byte // before the Seq in the walked bucket's keys
		c := events.Cursor()
		if q.UserID != "" {
			prefix = ownerPrefix(q.UserID)
			c = tx.Bucket([]byte(idxAuditUser)).Cursor()
		}
		lo, hi := append(bytes.Clone(prefix), seqKey(from)...), append(bytes.Clone(prefix), seqKey(to)...)
		var k []byte
		next := c.Next
		if q.Newest {
			next = c.Prev
			// The last key at or before hi: Seek lands on the first
			// at or after it.
			if k, _ = c.Seek(hi); k == nil {
				k, _ = c.Last()
			} else if bytes.Compare(k, hi) > 0 {
				k, _ = c.Prev()
			}
		} else {
			k, _ = c.Seek(lo)
		}
		for ; k != nil && len(out) < limit; k, _ = next() {
			if !bytes.HasPrefix(k, prefix) || bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) > 0 {
				return nil
			}
			seq := k[len(prefix):]
			raw := events.Get(seq)
			if raw == nil { // an index entry without its event
				continue
			}
			var ev data.AuditEvent
			if err := codec.AuditEvent.Decode(raw, &ev); err != nil {
				return fmt.Errorf("audit event %d: stored record cannot be decoded (%v): restore the store from a backup", binary.BigEndian.Uint64(seq), err)
			}
			if records.AuditMatch(&q, &ev) {
				out = append(out, ev)
			}
		}
		return nil
	})
	return out, err
}
