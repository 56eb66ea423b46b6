package users

import (
	"context"
	"fmt"
	"time"

	"github.com/vintner/arbor/data"
)

// AuditQuery selects a page of the audit trail, newest first.
type AuditQuery struct {
	// UserID: only events about this user.
	UserID string
	// Action: only this action; a value ending in "." is a prefix
	// ("user." is every user.* event).
	Action string
	// Since: only events at or after this time (zero: any).
	Since time.Time
	// Before: only events with a Seq below it (0: from the newest); the
	// previous page's AuditPage.Next.
	Before uint64
	// Limit is the page size: 0 is DefaultAuditLimit; at most
	// MaxAuditLimit.
	Limit int
}

// AuditPage is one page of the trail, newest first.
type AuditPage struct {
	Events []data.AuditEvent `json:"events"`
	// Next is the Before of the next (older) page; 0 when this page is
	// the last.
	Next uint64 `json:"next,omitempty"`
}

// Audit returns a page of the audit trail, newest first. Errors:
// ErrBadQuery (a negative or too large limit), the store's.
func (s *Service) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxAuditLimit:
		return AuditPage{}, fmt.Errorf("%w: limit %d is not between 1 and %d", ErrBadQuery, q.Limit, MaxAuditLimit)
	case q.Limit == 0:
		q.Limit = DefaultAuditLimit
	}
	evs, err := s.store.ListAudit(ctx, data.AuditQuery{
		UserID: q.UserID, Action: q.Action, Since: q.Since, BeforeSeq: q.Before, Newest: true, Limit: q.Limit,
	})
	if err != nil {
		return AuditPage{}, fmt.Errorf("reading the audit trail: %w", err)
	}
	page := AuditPage{Events: evs}
	if page.Events == nil {
		page.Events = []data.AuditEvent{}
	}
	if n := len(evs); n == q.Limit && evs[n-1].Seq > 1 {
		page.Next = evs[n-1].Seq
	}
	return page, nil
}

// deletedBefore finds the audit event of an earlier deletion of userID.
func (s *Service) deletedBefore(ctx context.Context, userID string) (data.AuditEvent, bool) {
	evs, err := s.store.ListAudit(ctx, data.AuditQuery{UserID: userID, Action: ActionDeleted, Newest: true, Limit: 1})
	if err != nil || len(evs) == 0 {
		return data.AuditEvent{}, false
	}
	return evs[0], true
}
