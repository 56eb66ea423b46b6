package clilogin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vintner/arbor/data"
)

// readCounter counts the device-code reads that reach the store.
type readCounter struct {
	Store
	reads atomic.Int32
}

func (r *readCounter) GetDeviceCode(ctx context.Context, code string) (data.DeviceCode, error) {
	r.reads.Add(1)
	return r.Store.GetDeviceCode(ctx, code)
}

// TestBusyCheckStopsAtAStoreFailure: a start from an address whose
// pending slots are full asks the store whether those requests have
// finished; when the store fails, it asks once, not once per request (on
// an etcd without quorum each read costs the store timeout, and a start
// took past two of them in the replica fault test).
func TestBusyCheckStopsAtAStoreFailure(t *testing.T) {
	ctx := context.Background()
	st, toks := testStore(t)
	rc := &readCounter{Store: st}
	now := time.Now()
	s, err := New(rc, Options{Tokens: toks, CodeKey: testKey, MaxPendingPerAddress: 3, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	from := From{Addr: "192.0.2.7"}
	for i := range 3 {
		if err := s.Start(ctx, from, StartRequest{DeviceCode: fmt.Sprintf("0123456789abcdef-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A real outage: the store is closed under the service.
	if err := st.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute) // past the wait between checks of one address
	err = s.Start(ctx, from, StartRequest{DeviceCode: "0123456789abcdef-3"})
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("start over the cap with the store down: %v, want busy", err)
	}
	if got := rc.reads.Load(); got != 1 {
		t.Errorf("the busy check read %d device codes from a failing store, want 1", got)
	}
}
