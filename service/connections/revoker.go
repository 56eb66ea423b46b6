package connections

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vintner/arbor/plugins"
	"github.com/vintner/arbor/sdk/abi"
	"github.com/vintner/arbor/service/providers"
)

// Revocation retries: a provider that was down at disconnect is asked again
// after 30 s, 1 min, 2 min, … for up to revokeAttempts tries (about an hour).
const (
	revokeAttempts    = 8
	revokeFirstRetry  = 30 * time.Second
	revokeMaxInterval = 15 * time.Minute
	revokeQueueLimit  = 10000
)

// revoker retries revocations in the background. The tokens it holds live
// only in memory: a restart abandons them (logged at shutdown), which is
// the price of never writing a token in the clear anywhere.
type revoker struct {
	b      *Broker
	mu     sync.Mutex
	queue  []*pendingRevoke
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed bool
	// firstRetry is revokeFirstRetry; tests shorten it.
	firstRetry time.Duration
}

type pendingRevoke struct {
	userID, provider string
	p                providers.Provider
	in               plugins.RevokeInput
	attempts         int
	next             time.Time
	wait             time.Duration
}

func newRevoker(b *Broker) *revoker {
	r := &revoker{b: b, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), firstRetry: revokeFirstRetry}
	go r.loop()
	return r
}

func (r *revoker) add(userID, provider string, p providers.Provider, in plugins.RevokeInput) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.queue) >= revokeQueueLimit {
		r.b.log.Error("a revocation could not be queued; revoke the grant at the provider by hand", "user_id", userID, "provider", provider)
		return
	}
	r.queue = append(r.queue, &pendingRevoke{userID: userID, provider: provider, p: p, in: in, attempts: 1,
		next: r.b.opts.Now().Add(r.firstRetry), wait: r.firstRetry})
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Pending reports how many revocations are waiting for a retry.
func (b *Broker) PendingRevocations() int {
	b.revoker.mu.Lock()
	defer b.revoker.mu.Unlock()
	return len(b.revoker.queue)
}

func (r *revoker) loop() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		now := r.b.opts.Now()
		var due []*pendingRevoke
		var keep []*pendingRevoke
		next := now.Add(time.Hour)
		for _, pr := range r.queue {
			if !pr.next.After(now) {
				due = append(due, pr)
			} else {
				keep = append(keep, pr)
				if pr.next.Before(next) {
					next = pr.next
				}
			}
		}
		r.queue = keep
		r.mu.Unlock()

		for _, pr := range due {
			r.try(pr)
		}
		if len(due) > 0 {
			continue // re-plan: tries may have re-queued
		}
		timer.Reset(max(next.Sub(now), time.Millisecond))
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

func (r *revoker) try(pr *pendingRevoke) {
	ctx, cancel := context.WithTimeout(context.Background(), r.b.opts.CallTimeout)
	err := pr.p.Revoke(ctx, pr.in)
	cancel()
	var pe *plugins.Error
	if err == nil || errors.As(err, &pe) && (pe.Code == abi.CodeInvalidToken || pe.Code == abi.CodeInvalidGrant || pe.Code == abi.CodeUnsupported) {
		r.b.log.Info("revoked a disconnected grant after retrying", "user_id", pr.userID, "provider", pr.provider, "attempts", pr.attempts+1)
		r.b.audit(context.Background(), "connection.revoke", pr.userID, pr.provider, "ok", nil)
		return
	}
	pr.attempts++
	if pr.attempts >= revokeAttempts {
		r.b.log.Error("giving up revoking a disconnected grant; revoke it at the provider by hand", "user_id", pr.userID, "provider", pr.provider, "attempts", pr.attempts, "err", err)
		r.b.audit(context.Background(), "connection.revoke", pr.userID, pr.provider, "abandoned", nil)
		return
	}
	pr.wait = min(pr.wait*2, revokeMaxInterval)
	pr.next = r.b.opts.Now().Add(pr.wait)
	r.mu.Lock()
	r.queue = append(r.queue, pr)
	r.mu.Unlock()
}

func (r *revoker) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	n := len(r.queue)
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	if n > 0 {
		r.b.log.Warn("shutting down with revocations still to retry; revoke those grants at the provider by hand", "count", n)
	}
}
