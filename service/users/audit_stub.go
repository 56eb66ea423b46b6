//go:build !arbor_auditq

package users

// TEMPORARY until data.AuditQuery grows Action, Since, BeforeSeq and
// Newest (the store branch); audit.go replaces this file then.

import (
	"context"
	"errors"
	"time"

	"github.com/vintner/arbor/data"
)

type AuditQuery struct {
	UserID string
	Action string
	Since  time.Time
	Before uint64
	Limit  int
}

type AuditPage struct {
	Events []data.AuditEvent `json:"events"`
	Next   uint64            `json:"next,omitempty"`
}

func (s *Service) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	return AuditPage{}, errors.New("reading the audit trail newest first needs the store's AuditQuery.Newest; not built yet")
}

func (s *Service) deletedBefore(ctx context.Context, userID string) (data.AuditEvent, bool) {
	return data.AuditEvent{}, false
}
