package boltdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/internal/records"
)

// ImportAudit and ImportConnection refuse what data.Importer rules out
// (data.CheckImport*), and store nothing.
func TestImportRefusesInvalid(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	now := time.Now()
	ev := func(seq uint64, user string) data.AuditEvent {
		return data.AuditEvent{Seq: seq, Time: now, Action: "login", UserID: user}
	}
	noTime := ev(1, "")
	noTime.Time = time.Time{}
	noAction := ev(1, "")
	noAction.Action = ""
	for name, events := range map[string][]data.AuditEvent{
		"zero seq":       {ev(0, "")},
		"seq not rising": {ev(2, ""), ev(2, "")},
		"no time":        {noTime},
		"no action":      {noAction},
		"NUL in user_id": {ev(1, "u\x00x")},
		"long user_id":   {ev(1, strings.Repeat("u", records.MaxKeyLen+1))},
		"bad event last": {ev(1, ""), ev(2, ""), ev(1, "")},
	} {
		if err := s.ImportAudit(ctx, events); !errors.Is(err, data.ErrInvalid) {
			t.Errorf("ImportAudit with %s: %v, want ErrInvalid", name, err)
		}
	}
	if got, err := s.ListAudit(ctx, data.AuditQuery{}); err != nil || len(got) != 0 {
		t.Errorf("after refused imports, ListAudit: %d events, %v", len(got), err)
	}
	if err := s.ImportConnection(ctx, data.Connection{}); !errors.Is(err, data.ErrInvalid) {
		t.Errorf("ImportConnection with version 0: %v, want ErrInvalid", err)
	}
}
