package etcd

import (
	"bytes"
	"errors"
)

// Ambiguous commits
//
// A transaction whose member went away before answering (stopped, lost its
// leader, could not be reached) may or may not have been applied. commit
// reports it as ambiguousError, and retry runs the attempt again. The new
// attempt re-reads the record, and its guard (the mod revision it read)
// keeps it from writing over anything newer. What it must not do is take
// its own earlier write for someone else's: a device code it consumed would
// read as consumed by another (data.ErrConsumed), a record it deleted as
// never there (data.ErrNotFound), a refresh family it rotated as a replayed
// token. The caller would be told that a request failed when it succeeded.
//
// So every write remembers what its ambiguous attempts wrote (written), and
// an attempt that finds one of those in place ends there, done:
//
//   - A put is recognised by its bytes. Records that must be taken by one
//     writer only carry the write's time to the nanosecond or a fresh random
//     value (a consumed code's ConsumedAt, a rotated family's jti), so
//     another replica's write is not mistaken for ours. Where two writers
//     did write the same bytes, the record is in the state asked for either
//     way.
//   - A delete that finds the record gone is done: gone is what was asked.
//   - Consuming an OAuth state is a delete that must have one winner, and
//     the deleted record leaves no bytes to recognise. Its transaction also
//     writes a marker with a random value under the state's lease
//     (prefixConsumed); a consumer that finds the state gone and the marker
//     its own is the one that consumed it.
//
// Only ambiguous attempts are remembered, so none of this costs anything
// on a write whose answer arrived.

// written holds what a write's ambiguous attempts wrote: the bytes of each
// and the value to return if one of them turns out to be in place.
type written[T any] struct {
	raws [][]byte
	vals []T
}

// note remembers raw and v if err says the commit that wrote them was
// ambiguous.
func (w *written[T]) note(err error, raw []byte, v T) {
	if isAmbiguous(err) {
		w.raws = append(w.raws, raw)
		w.vals = append(w.vals, v)
	}
}

// find returns the value whose write left exactly raw in place.
func (w *written[T]) find(raw []byte) (T, bool) {
	for i, r := range w.raws {
		if bytes.Equal(r, raw) {
			return w.vals[i], true
		}
	}
	var zero T
	return zero, false
}

// isAmbiguous reports whether err is a commit that may have been applied.
func isAmbiguous(err error) bool { return errors.As(err, new(ambiguousError)) }
