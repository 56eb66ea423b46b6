package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vintner/arbor/data"
	"github.com/vintner/arbor/data/etcd"
)

// answerLoser lets write transactions through to etcd and then, while
// armed, loses their answers: the write is committed, and the client sees
// codes.Unavailable, as when the member that served it stops before
// replying (what the replica fault test saw happen).
type answerLoser struct {
	armed atomic.Int32 // answers still to lose
	lost  atomic.Int32 // answers lost so far
}

func (l *answerLoser) intercept(ctx context.Context, method string, req, reply any,
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil || method != "/etcdserverpb.KV/Txn" || !writes(req) {
		return err
	}
	for {
		n := l.armed.Load()
		if n <= 0 {
			return nil
		}
		if l.armed.CompareAndSwap(n, n-1) {
			break
		}
	}
	l.lost.Add(1)
	return status.Error(codes.Unavailable, "test: the member went away before answering")
}

// writes reports whether req is a transaction that may write.
func writes(req any) bool {
	txn, ok := req.(*etcdserverpb.TxnRequest)
	if !ok {
		return false
	}
	for _, op := range slices.Concat(txn.Success, txn.Failure) {
		if op.GetRequestPut() != nil || op.GetRequestDeleteRange() != nil {
			return true
		}
	}
	return false
}

// lossyStore returns a store whose client goes through l, on the shared
// server under root.
func lossyStore(t *testing.T, l *answerLoser, root string) *etcd.Store {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   shared.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(l.intercept)},
	})
	must(t, err)
	t.Cleanup(func() { cl.Close() })
	s, err := etcd.New(context.Background(), cl, etcd.Config{Root: root, RequestTimeout: 5 * time.Second}, etcd.Options{Logger: quiet})
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// A write whose answer is lost after etcd committed it is retried; the
// retry must recognise the committed write as its own and report success,
// not the failure the changed record would otherwise mean (consumed,
// gone, rotated) — and single use must still hold for everyone else.
func TestLostAnswers(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	hour := now.Add(time.Hour)
	cases := []struct {
		name  string
		setup func(t *testing.T, s *etcd.Store)
		// op runs with one answer lost and must succeed.
		op func(t *testing.T, s *etcd.Store) error
		// after checks the store afterwards.
		after func(t *testing.T, s *etcd.Store)
	}{
		{
			name: "consume device code",
			setup: func(t *testing.T, s *etcd.Store) {
				must(t, s.CreateDeviceCode(ctx, data.DeviceCode{Code: "dc1", Kind: "cli", State: "approved", CreatedAt: now, ExpiresAt: hour}))
			},
			op: func(t *testing.T, s *etcd.Store) error {
				d, err := s.ConsumeDeviceCode(ctx, "dc1", func(data.DeviceCode) error { return nil })
				if err == nil && d.ConsumedAt.IsZero() {
					t.Errorf("consumed code without ConsumedAt: %+v", d)
				}
				return err
			},
			after: func(t *testing.T, s *etcd.Store) {
				if _, err := s.ConsumeDeviceCode(ctx, "dc1", func(data.DeviceCode) error { return nil }); !errors.Is(err, data.ErrConsumed) {
					t.Errorf("second consume: %v, want ErrConsumed", err)
				}
			},
		},
		{
			name: "consume oauth state",
			setup: func(t *testing.T, s *etcd.Store) {
				must(t, s.CreateOAuthState(ctx, data.OAuthState{ID: "st1", Provider: "p", Purpose: "login", CreatedAt: now, ExpiresAt: hour}))
			},
			op: func(t *testing.T, s *etcd.Store) error {
				st, err := s.ConsumeOAuthState(ctx, "st1")
				if err == nil && st.ID != "st1" {
					t.Errorf("consumed state %+v, want st1", st)
				}
				return err
			},
			after: func(t *testing.T, s *etcd.Store) {
				if _, err := s.ConsumeOAuthState(ctx, "st1"); !errors.Is(err, data.ErrNotFound) {
					t.Errorf("second consume: %v, want ErrNotFound", err)
				}
			},
		},
		{
			name: "rotate refresh family",
			setup: func(t *testing.T, s *etcd.Store) {
				must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
				must(t, s.CreateRefreshFamily(ctx, data.RefreshFamily{ID: "f1", UserID: "u1", CurrentJTI: "j1", CreatedAt: now, ExpiresAt: hour}))
			},
			op: func(t *testing.T, s *etcd.Store) error {
				// As the CLI refresh does: only the current token rotates.
				f, err := s.UpdateRefreshFamily(ctx, "f1", func(f data.RefreshFamily) (data.RefreshFamily, error) {
					if f.CurrentJTI != "j1" {
						return f, errors.New("refresh token reused")
					}
					f.PreviousJTI, f.CurrentJTI, f.Generation = f.CurrentJTI, "j2", f.Generation+1
					return f, nil
				})
				if err == nil && (f.CurrentJTI != "j2" || f.Generation != 1) {
					t.Errorf("rotated family %+v, want j2 at generation 1", f)
				}
				return err
			},
			after: func(t *testing.T, s *etcd.Store) {
				f, err := s.GetRefreshFamily(ctx, "f1")
				must(t, err)
				if f.CurrentJTI != "j2" || f.Generation != 1 {
					t.Errorf("stored family %+v, want one rotation to j2", f)
				}
			},
		},
		{
			name: "create session",
			setup: func(t *testing.T, s *etcd.Store) {
				must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
			},
			op: func(t *testing.T, s *etcd.Store) error {
				return s.CreateSession(ctx, session("s1", "u1", now, time.Hour))
			},
			after: func(t *testing.T, s *etcd.Store) {
				_, err := s.GetSession(ctx, "s1")
				must(t, err)
			},
		},
		{
			name: "delete worker",
			setup: func(t *testing.T, s *etcd.Store) {
				must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
				must(t, s.CreateWorker(ctx, data.Worker{ID: "w1", UserID: "u1", Name: "w", TokenHash: make([]byte, 32), CreatedAt: now}))
			},
			op: func(t *testing.T, s *etcd.Store) error { return s.DeleteWorker(ctx, "w1") },
			after: func(t *testing.T, s *etcd.Store) {
				if _, err := s.GetWorker(ctx, "w1"); !errors.Is(err, data.ErrNotFound) {
					t.Errorf("worker after delete: %v, want ErrNotFound", err)
				}
			},
		},
		{
			name: "delete user",
			setup: func(t *testing.T, s *etcd.Store) {
				must(t, s.CreateUser(ctx, data.User{ID: "u1"}))
				must(t, s.CreateSession(ctx, session("s1", "u1", now, time.Hour)))
			},
			op: func(t *testing.T, s *etcd.Store) error { return s.DeleteUser(ctx, "u1") },
			after: func(t *testing.T, s *etcd.Store) {
				if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, data.ErrNotFound) {
					t.Errorf("session after user delete: %v, want ErrNotFound", err)
				}
			},
		},
		{
			name: "append audit event",
			setup: func(t *testing.T, s *etcd.Store) {
				_, err := s.AppendAudit(ctx, data.AuditEvent{Action: "first", Time: now})
				must(t, err)
			},
			op: func(t *testing.T, s *etcd.Store) error {
				ev, err := s.AppendAudit(ctx, data.AuditEvent{Action: "second", Time: now})
				if err == nil && ev.Seq != 2 {
					t.Errorf("appended as seq %d, want 2", ev.Seq)
				}
				return err
			},
			after: func(t *testing.T, s *etcd.Store) {
				evs, err := s.ListAudit(ctx, data.AuditQuery{})
				must(t, err)
				var actions []string
				for _, e := range evs {
					actions = append(actions, e.Action)
				}
				slices.Sort(actions)
				if !slices.Equal(actions, []string{"first", "second"}) {
					t.Errorf("audit trail %v, want first and second once each", actions)
				}
				ev, err := s.AppendAudit(ctx, data.AuditEvent{Action: "third", Time: now})
				if err != nil || ev.Seq != 3 {
					t.Errorf("next append: seq %d, %v; want 3", ev.Seq, err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &answerLoser{}
			s := lossyStore(t, l, newRoot())
			tc.setup(t, s)
			l.armed.Store(1)
			if err := tc.op(t, s); err != nil {
				t.Errorf("with its answer lost: %v, want success", err)
			}
			if l.lost.Load() != 1 {
				t.Fatalf("%d answers lost, want 1: the case did not test a lost answer", l.lost.Load())
			}
			tc.after(t, s)
		})
	}
}

// Single use holds when a consumer's answer is lost while another replica
// consumes the same record: of the two, exactly one succeeds, in every
// round, whichever commits first.
func TestLostAnswerSingleUse(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	l := &answerLoser{}
	root := newRoot()
	lossy, other := lossyStore(t, l, root), newStoreAt(t, root, nil)
	const rounds = 30
	kinds := []struct {
		name    string
		create  func(id string) error
		consume func(s *etcd.Store, id string) error
	}{
		{"oauth state",
			func(id string) error {
				return lossy.CreateOAuthState(ctx, data.OAuthState{ID: id, Provider: "p", Purpose: "login", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			},
			func(s *etcd.Store, id string) error { _, err := s.ConsumeOAuthState(ctx, id); return err }},
		{"device code",
			func(id string) error {
				return lossy.CreateDeviceCode(ctx, data.DeviceCode{Code: id, Kind: "cli", State: "approved", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			},
			func(s *etcd.Store, id string) error {
				_, err := s.ConsumeDeviceCode(ctx, id, func(data.DeviceCode) error { return nil })
				return err
			}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			lostBefore := l.lost.Load()
			for i := range rounds {
				id := fmt.Sprintf("%s-%d", k.name[:1], i)
				must(t, k.create(id))
				l.armed.Store(1)
				errs := make(chan error, 2)
				go func() { errs <- k.consume(lossy, id) }()
				go func() { errs <- k.consume(other, id) }()
				e1, e2 := <-errs, <-errs
				l.armed.Store(0)
				if (e1 == nil) == (e2 == nil) {
					t.Fatalf("round %d: consumers got %v and %v; want exactly one success", i, e1, e2)
				}
				for _, err := range []error{e1, e2} {
					if err != nil && !errors.Is(err, data.ErrNotFound) && !errors.Is(err, data.ErrConsumed) {
						t.Fatalf("round %d: the losing consumer got %v, want not found or consumed", i, err)
					}
				}
			}
			if l.lost.Load()-lostBefore == 0 {
				t.Fatal("no answer was lost: the rounds tested nothing")
			}
			t.Logf("%d rounds, %d of the lossy consumer's answers lost", rounds, l.lost.Load()-lostBefore)
		})
	}
}
