package app_test

import (
	"context"
	"testing"

	"github.com/vintner/arbor/app/apptest"
	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/gateway/edge/https"
)

// With https the app keeps the TLS session ticket keys in its store,
// sealed, so that replicas sharing the store resume each other's sessions
// (docs/tls.md, "Session resumption across replicas").
func TestHTTPSSessionTicketKeysInTheStore(t *testing.T) {
	h := apptest.New(t, apptest.TLS())
	b, err := h.App.Store().GetBlob(context.Background(), https.TicketKeysBlob)
	if err != nil {
		t.Fatalf("session ticket keys in the store: %v", err)
	}
	if !data.IsSealedBlob(b.Value) {
		t.Fatal("the session ticket keys are stored unsealed")
	}
}
