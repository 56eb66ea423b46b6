package boltdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/vintner/arbor/data/internal/namelock"
	"github.com/vintner/arbor/data/internal/records"
)

// Lock implements data.Locks. bbolt's file lock lets one process open the
// store, so a lock held in this process is held against every user of the
// store. A holder cannot die without its process, which releases
// everything, so there is no TTL. The mutex per name is package
// data/internal/namelock, which Close closes to wake the Locks waiting.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if err := records.CheckKey("lock", "name", name); err != nil {
		return nil, fmt.Errorf("boltdb: %w", err)
	}
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	unlock, err = s.locks.Lock(ctx, name)
	switch {
	case err == nil && s.closed.Load():
		unlock()
		return nil, s.errClosed()
	case errors.Is(err, namelock.ErrClosed):
		return nil, s.errClosed()
	case err != nil:
		return nil, fmt.Errorf("boltdb: waiting for lock %q: %w", name, err)
	}
	return unlock, nil
}
